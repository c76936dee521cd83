//! [`PoolShare`]: one connection's view of a shared pool.

use super::{Pool, PoolBuf, PoolError};
#[cfg(feature = "baselines")]
use crate::baseline::GoPools;

/// What one connection leases from a shared [`Pool`]: its own count of
/// leased bytes and an optional cap on them (its share of the budget).
///
/// A lease that would take the connection past its share fails with
/// [`PoolError::ShareExceeded`] while other connections keep leasing. The
/// pool counts the share among its connections until it is dropped.
#[derive(Debug)]
pub struct PoolShare {
    pool: Pool,
    share: Option<usize>,
    leased_bytes: usize,
    peak_leased_bytes: usize,
    /// Baselines only: Go's scratch pools, which take their buffers back.
    #[cfg(feature = "baselines")]
    scratch: Option<GoPools>,
}

impl PoolShare {
    /// A share of `pool`, capped at `share` leased bytes (`None`: only the
    /// pool's budget applies).
    pub fn new(pool: &Pool, share: Option<usize>) -> Self {
        pool.count_connection(true);
        Self {
            pool: pool.clone(),
            share,
            leased_bytes: 0,
            peak_leased_bytes: 0,
            #[cfg(feature = "baselines")]
            scratch: None,
        }
    }

    /// Baselines only: streams of this share take Go scratch buffers from `scratch`.
    #[cfg(feature = "baselines")]
    pub fn with_scratch(mut self, scratch: &GoPools) -> Self {
        self.scratch = Some(scratch.clone());
        self
    }

    /// Baselines only: the Go scratch pools, if this share has them.
    #[cfg(feature = "baselines")]
    pub fn scratch(&self) -> Option<&GoPools> {
        self.scratch.as_ref()
    }

    /// The pool this share leases from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The cap on this share's leased bytes, if any.
    pub fn share(&self) -> Option<usize> {
        self.share
    }

    /// Bytes this share holds leased now.
    pub fn leased_bytes(&self) -> usize {
        self.leased_bytes
    }

    /// Peak of [`PoolShare::leased_bytes`].
    pub fn peak_leased_bytes(&self) -> usize {
        self.peak_leased_bytes
    }

    /// [`Pool::lease`], within the share.
    pub fn lease(&mut self, len: usize) -> Result<PoolBuf, PoolError> {
        if let Some(share) = self.share {
            let requested = self.pool.class_size(len)?;
            if self.leased_bytes + requested > share {
                return Err(PoolError::ShareExceeded { requested, leased: self.leased_bytes, share });
            }
        }
        let buf = self.pool.lease(len)?;
        self.leased_bytes += buf.capacity();
        self.peak_leased_bytes = self.peak_leased_bytes.max(self.leased_bytes);
        Ok(buf)
    }

    /// [`Pool::release`]; a buffer of another pool is just freed (a Go
    /// scratch buffer goes back to its scratch pools).
    pub fn release(&mut self, buf: PoolBuf) {
        #[cfg(feature = "baselines")]
        if let (super::Home::Scratch(_), Some(scratch)) = (buf.home(), &self.scratch) {
            return scratch.release(buf);
        }
        if self.pool.owns(&buf) {
            self.leased_bytes -= buf.capacity();
        }
        self.pool.release(buf);
    }
}

impl Drop for PoolShare {
    fn drop(&mut self) {
        self.pool.count_connection(false);
    }
}
