//! Query root: translation only; the rules live in `contacts`.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::{
    changes::ContactChangeConnection,
    connection::ContactConnection,
    contact::{Contact, Node},
    inputs, parse_id, request_now, service,
};
use crate::contacts::{
    filter::{self, FilterInput},
    page::{Page, PageArgs, PageSpec},
};

pub struct QueryRoot;

/// Counts over the contacts matching a filter.
#[derive(SimpleObject)]
pub struct ContactStats {
    /// All matching contacts.
    total: i64,
    /// Matching contacts whose window is open now.
    whatsapp_window_open: i64,
}

fn parse_filter(filter: Option<inputs::ContactFilter>) -> Result<filter::ContactFilter> {
    let input = filter.map(FilterInput::from).unwrap_or_default();
    Ok(filter::ContactFilter::parse(input, "filter")?)
}

#[Object(name = "Query")]
impl QueryRoot {
    /// Any object by its id.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A contact id.")] id: ID,
    ) -> Result<Option<Node>> {
        let contact = self.contact(ctx, id).await?;
        Ok(contact.map(Node::Contact))
    }

    /// A contact by id; null when there is none.
    async fn contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A contact id.")] id: ID,
    ) -> Result<Option<Contact>> {
        let row = service(ctx)?.get(parse_id(&id, "id")?).await?;
        Ok(row.map(|row| Contact::new(row, request_now(ctx))))
    }

    /// A contact by phone number, in any format the input accepts; null when there is none.
    async fn contact_by_phone_number(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "E.164, international (`+56 9 1234 5678`) or national with `countryCode`."
        )]
        phone_number: String,
        #[graphql(desc = "Needed when `phoneNumber` is national.")] country_code: Option<String>,
    ) -> Result<Option<Contact>> {
        let row = service(ctx)?
            .get_by_phone(&phone_number, country_code.as_deref())
            .await?;
        Ok(row.map(|row| Contact::new(row, request_now(ctx))))
    }

    /// A contact by WhatsApp user id (BSUID), current or replaced by an identity change;
    /// null when there is none. `BAD_USER_INPUT` when it is not a BSUID.
    async fn contact_by_whatsapp_user_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A BSUID, e.g. `US.13491208655302741918`.")] whatsapp_user_id: String,
    ) -> Result<Option<Contact>> {
        let row = service(ctx)?
            .get_by_whatsapp_user_id(&whatsapp_user_id)
            .await?;
        Ok(row.map(|row| Contact::new(row, request_now(ctx))))
    }

    /// Contacts, a page at a time (Relay cursor connection; default 20, at most 100).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "first.or(last).unwrap_or(20).clamp(1, 100) as usize * child_complexity"
    )]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Up to 100 contacts after `after`.")] first: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] after: Option<String>,
        #[graphql(desc = "Up to 100 contacts before `before`.")] last: Option<i32>,
        #[graphql(desc = "A cursor from a previous page.")] before: Option<String>,
        #[graphql(desc = "Only contacts matching every given condition.")] filter: Option<
            inputs::ContactFilter,
        >,
        #[graphql(desc = "Default `CREATED_AT ASC`.")] order_by: Option<inputs::ContactOrder>,
    ) -> Result<ContactConnection> {
        let order = order_by.map(Into::into).unwrap_or_default();
        let spec = PageSpec::parse(
            PageArgs {
                first,
                after,
                last,
                before,
            },
            order,
        )?;
        let filter = parse_filter(filter)?;
        let now = request_now(ctx);
        // A selection of `totalCount` alone reads no page: the page would be read (and, for a
        // filter matching few contacts in a large table, searched for) only to be dropped.
        let selection = ctx.look_ahead();
        let rows_selected = ["edges", "nodes", "pageInfo"]
            .into_iter()
            .any(|field| selection.field(field).exists());
        let page = if rows_selected {
            service(ctx)?.list(&filter, &spec, now).await?
        } else {
            Page::empty(spec.order.field)
        };
        Ok(ContactConnection { page, filter, now })
    }

    /// Totals over the contacts matching `filter`.
    async fn contact_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only contacts matching every given condition.")] filter: Option<
            inputs::ContactFilter,
        >,
    ) -> Result<ContactStats> {
        let stats = service(ctx)?
            .stats(&parse_filter(filter)?, request_now(ctx))
            .await?;
        Ok(ContactStats {
            total: stats.total,
            whatsapp_window_open: stats.whatsapp_window_open,
        })
    }

    /// Every committed create, update, delete and merge, exactly once, in commit order (the
    /// change log; kept for `CHANGE_LOG_RETENTION_DAYS`). An empty page's `endCursor` is where
    /// to poll from; a cursor older than the retention is `CURSOR_EXPIRED`.
    // A page is one range read of the log, snapshots included, so 1,000 changes cost about
    // what 100 contacts do: counted per ten changes, as `contacts` counts per contact (the
    // contact of each change is counted per change: `ContactChange.contact`).
    #[graphql(complexity = "(first.unwrap_or(100).clamp(1, 1000) as usize) \
                            .div_ceil(super::limits::cost::CHANGES_PER_UNIT) \
                            * child_complexity")]
    async fn contact_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A cursor from a previous page or event; omit for the oldest kept.")]
        after: Option<String>,
        #[graphql(desc = "Up to 1,000 changes (default 100).")] first: Option<i32>,
    ) -> Result<ContactChangeConnection> {
        let page = service(ctx)?.change_feed(after.as_deref(), first).await?;
        Ok(ContactChangeConnection {
            changes: page.changes,
            has_next_page: page.has_next_page,
            resume_from: page.resume_from,
            now: request_now(ctx),
        })
    }
}
