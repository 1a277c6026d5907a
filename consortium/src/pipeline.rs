//! A transaction's statements in one round trip each way (docs/benchmarks.md,
//! session 22).
//!
//! A grouped step (a bank's holds, votes or postings; the switch's batch) was a
//! round trip per statement: BEGIN, a setting, each statement, COMMIT. On a busy
//! machine every round trip waits for two processes to be scheduled again, and
//! the group's worker, which the next group waits behind, waits through each.
//! tokio-postgres pipelines requests whose futures are polled together (each
//! is sent on its first poll, in the order polled) and PostgreSQL runs them in
//! the order received, so `Pipelined::begin` sends BEGIN and every statement
//! at once and then reads the answers.
//!
//! COMMIT is never sent in the same flight: a statement whose parameters fail
//! to encode is never sent, and a COMMIT behind it would commit the others
//! without it. The caller commits once every answer is in.
//!
//! A `Pipelined` dropped before it is ended (an early return, a panic, a
//! cancelled future) takes its connection out of the pool and closes it, so
//! the server rolls the transaction back and no later user of the pool ever
//! finds a transaction open on its connection.

use std::{future::Future, pin::Pin, task::Poll};

use deadpool_postgres::Object;
use tokio_postgres::{types::ToSql, Client, Error, Row, Statement};

/// Statements one flight sends at most (every caller's are a handful).
pub const MAX_STATEMENTS: usize = 16;

/// One prepared statement and its parameters.
pub type Query<'a> = (&'a Statement, &'a [&'a (dyn ToSql + Sync)]);

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, Error>> + Send + 'a>>;

/// An open transaction whose statements go out in flights.
pub struct Pipelined {
    /// `None` once ended (committed or rolled back on a healthy connection).
    client: Option<Object>,
}

impl Pipelined {
    /// Sends `begin` (simple-query text that opens a transaction, and may set
    /// things for it) and `queries` without waiting between them; returns the
    /// open transaction and each query's rows. On `Err` (the first error: the
    /// statements after a failed one fail too) the transaction is over.
    /// Statements must be prepared (`prepare_cached`) before: preparing is a
    /// round trip of its own.
    pub async fn begin(client: Object, begin: &str, queries: &[Query<'_>]) -> Result<(Pipelined, Vec<Vec<Row>>), Error> {
        let mut open = Pipelined { client: Some(client) };
        let rows = open.flight(Some(begin), queries).await?;
        Ok((open, rows))
    }

    /// `queries` in this transaction, sent at once; as `begin`, an error ends it.
    pub async fn run(&mut self, queries: &[Query<'_>]) -> Result<Vec<Vec<Row>>, Error> {
        self.flight(None, queries).await
    }

    /// The connection, to prepare statements on.
    pub fn client(&self) -> &Object {
        self.client.as_ref().expect("a transaction in use is open")
    }

    pub async fn commit(mut self) -> Result<(), Error> {
        self.end("COMMIT").await
    }

    /// Commits, and answers the primary's WAL position once the commit is done (as
    /// `pg_current_wal_lsn()`): at or after the commit record, for read-your-writes
    /// on replicas. One round trip, like `commit`.
    pub async fn commit_at_position(mut self) -> Result<String, Error> {
        let client: &Client = self.client();
        let messages = client.simple_query("COMMIT; SELECT pg_current_wal_lsn()::text").await?;
        self.client = None;
        let position = messages.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        });
        Ok(position.expect("pg_current_wal_lsn() answers one row"))
    }

    pub async fn rollback(mut self) -> Result<(), Error> {
        self.end("ROLLBACK").await
    }

    /// Ends the transaction; the connection goes back to the pool only if that worked.
    async fn end(&mut self, sql: &str) -> Result<(), Error> {
        let client: &Client = self.client();
        client.batch_execute(sql).await?;
        self.client = None;
        Ok(())
    }

    async fn flight(&mut self, begin: Option<&str>, queries: &[Query<'_>]) -> Result<Vec<Vec<Row>>, Error> {
        assert!(queries.len() <= MAX_STATEMENTS, "a flight is at most {MAX_STATEMENTS} statements");
        let client: &Client = self.client();
        let mut answers: Vec<Answer<'_>> = Vec::with_capacity(queries.len() + 1);
        if let Some(begin) = begin {
            answers.push(Box::pin(async move { client.batch_execute(begin).await.map(|()| Vec::new()) }));
        }
        for &(statement, params) in queries {
            answers.push(Box::pin(client.query(statement, params)));
        }
        let mut results: Vec<Option<Result<Vec<Row>, Error>>> = answers.iter().map(|_| None).collect();
        // Polled in order every time, so the requests leave in this order.
        std::future::poll_fn(|cx| {
            let mut all_in = true;
            for (answer, result) in answers.iter_mut().zip(results.iter_mut()) {
                if result.is_none() {
                    match answer.as_mut().poll(cx) {
                        Poll::Ready(r) => *result = Some(r),
                        Poll::Pending => all_in = false,
                    }
                }
            }
            if all_in {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        drop(answers);
        let mut rows = Vec::with_capacity(results.len());
        let mut first_error = None;
        for result in results.into_iter().map(|r| r.expect("every answer is in")) {
            match result {
                Ok(r) => rows.push(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            // Ends the failed transaction (or one that a statement which never left kept
            // open); if even that fails, dropping `self` closes the connection.
            let _ = self.end("ROLLBACK").await;
            return Err(e);
        }
        if begin.is_some() {
            rows.remove(0);
        }
        Ok(rows)
    }
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Out of the pool, then closed: the server rolls back what was left open.
            drop(Object::take(client));
        }
    }
}
