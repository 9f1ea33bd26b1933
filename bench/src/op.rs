//! What the benchmark measures: the servers (targets) and the operations, with which target
//! serves which.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Graphql,
    /// Plain handlers on the domain layer (`bench-baseline`).
    Baseline,
    /// Plain handlers on one raw sqlx statement each (`bench-raw-baseline`).
    Raw,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Self::Graphql => "graphql",
            Self::Baseline => "baseline",
            Self::Raw => "raw",
        }
    }

    /// The raw baseline serves only the operations the ceiling is measured on; the
    /// size operations (issue 13) are the GraphQL server's alone.
    pub fn serves(self, op: Op) -> bool {
        match self {
            Self::Graphql => true,
            Self::Baseline => !op.is_scale(),
            Self::Raw => matches!(op, Op::Lookup | Op::OpenWindows | Op::Create),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Graphql, Self::Baseline, Self::Raw]
            .into_iter()
            .find(|target| target.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lookup,
    OpenWindows,
    OpenWindowsOnNumber,
    Page1,
    Page2000,
    Stats,
    Create,
    Mix,
    /// Issue 13's size operations (`scale`), GraphQL only.
    PageByLast1,
    PageByLast2000,
    ClosedWindows,
    MetadataMatch,
    MetadataNone,
    Prefix,
    Count,
    CountFiltered,
}

impl Op {
    /// Reads first: the writes add rows the reads would otherwise see.
    pub const ALL: [Op; 16] = [
        Op::Lookup,
        Op::OpenWindows,
        Op::OpenWindowsOnNumber,
        Op::Page1,
        Op::Page2000,
        Op::Stats,
        Op::PageByLast1,
        Op::PageByLast2000,
        Op::ClosedWindows,
        Op::MetadataMatch,
        Op::MetadataNone,
        Op::Prefix,
        Op::Count,
        Op::CountFiltered,
        Op::Create,
        Op::Mix,
    ];

    pub fn is_scale(self) -> bool {
        matches!(
            self,
            Op::PageByLast1
                | Op::PageByLast2000
                | Op::ClosedWindows
                | Op::MetadataMatch
                | Op::MetadataNone
                | Op::Prefix
                | Op::Count
                | Op::CountFiltered
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Lookup => "lookup",
            Self::OpenWindows => "open-windows",
            Self::OpenWindowsOnNumber => "open-windows-number",
            Self::Page1 => "page-1",
            Self::Page2000 => "page-2000",
            Self::Stats => "stats",
            Self::Create => "create",
            Self::Mix => "mix",
            Self::PageByLast1 => "page-1-last",
            Self::PageByLast2000 => "page-2000-last",
            Self::ClosedWindows => "closed-windows",
            Self::MetadataMatch => "metadata-match",
            Self::MetadataNone => "metadata-none",
            Self::Prefix => "prefix",
            Self::Count => "count",
            Self::CountFiltered => "count-filtered",
        }
    }
}
