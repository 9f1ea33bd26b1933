//! SQLite's statement deadline: a statement that runs longer than the deadline is interrupted
//! (`SQLITE_INTERRUPT`, answered `QUERY_TIMEOUT`), as PostgreSQL's `statement_timeout` stops
//! one, so a request dropped by the HTTP timeout cannot leave its statement running and its
//! connection busy.
//!
//! Both hooks are installed once, when the connection opens: SQLite's trace hook notes when
//! each statement starts, and its progress handler, called every few thousand instructions
//! of a running statement, interrupts it once it has run past the deadline. An earlier
//! version installed a fresh deadline each time the pool handed out a connection; that asked
//! the connection's worker thread for its handle on every checkout, a thread handoff that cost
//! a fifth of the throughput of a lookup.

use std::{
    ffi::{c_char, c_int, c_uint, c_void},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::sqlx::{self, SqliteConnection};

/// SQLite virtual-machine instructions between two deadline checks: a few microseconds of
/// work, so a statement overruns its deadline by about that much.
const CHECK_OPS: i32 = 10_000;

/// When the connection's running statement started, in nanoseconds since the connection
/// opened. Written by the trace hook and read by the progress handler, both on the
/// connection's worker thread; atomic only so that it may be shared at all.
struct StatementStart {
    opened: Instant,
    started_nanos: AtomicU64,
}

impl StatementStart {
    fn elapsed_nanos(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn restart(&self) {
        self.started_nanos
            .store(self.elapsed_nanos(), Ordering::Relaxed);
    }

    fn running_for(&self) -> Duration {
        let started = self.started_nanos.load(Ordering::Relaxed);
        Duration::from_nanos(self.elapsed_nanos().saturating_sub(started))
    }
}

/// `sqlite3_trace_v2`'s callback for `SQLITE_TRACE_STMT`, called as a statement starts running
/// and again as each trigger it fires starts; triggers are named by an SQL comment (`-- …`)
/// and belong to the statement that fired them, so they do not restart its clock.
unsafe extern "C" fn statement_started(
    _mask: c_uint,
    context: *mut c_void,
    _statement: *mut c_void,
    sql: *mut c_void,
) -> c_int {
    let sql = sql.cast::<c_char>();
    // SAFETY: `context` is the `StatementStart` that the connection's progress handler owns
    // (see `install`), alive for as long as the connection; SQLite passes the statement's SQL
    // as a NUL-terminated string, of which only the first byte is read.
    unsafe {
        let is_trigger = !sql.is_null() && *sql == b'-' as c_char;
        if !is_trigger && let Some(start) = context.cast::<StatementStart>().as_ref() {
            start.restart();
        }
    }
    0
}

/// Installs the deadline on a newly opened connection.
pub async fn install(conn: &mut SqliteConnection, deadline: Duration) -> sqlx::Result<()> {
    let start = Arc::new(StatementStart {
        opened: Instant::now(),
        started_nanos: AtomicU64::new(0),
    });
    let mut handle = conn.lock_handle().await?;
    let context = Arc::as_ptr(&start).cast_mut().cast::<c_void>();
    // The progress handler owns the clock; SQLite drops the handler only as the connection
    // closes, after which no statement starts and the trace hook is never called again.
    handle.set_progress_handler(CHECK_OPS, move || start.running_for() < deadline);
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked by `handle`; `context` lives
    // as long as the progress handler installed just above, which is the connection's life.
    let status = unsafe {
        libsqlite3_sys::sqlite3_trace_v2(
            db,
            libsqlite3_sys::SQLITE_TRACE_STMT,
            Some(statement_started),
            context,
        )
    };
    if status != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "installing the statement deadline: SQLite error {status}"
        )));
    }
    Ok(())
}
