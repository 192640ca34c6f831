//! Files on the receiving side: where bytes go before they have a name.
//!
//! Every byte a transfer receives is written into a *working file* in the
//! destination directory, never under the final name. There are two kinds:
//!
//! - a **resume slot** for one destination name: `.socklab-<key>.part`
//!   holding the bytes, and `.socklab-<key>.meta`, a small sidecar saying
//!   which transfer they belong to (name, size, digest algorithm), how many
//!   bytes are held and the BLAKE3 of exactly those bytes. `<key>` is 32 hex
//!   digits of the BLAKE3 of the name, so the slot's file names are short,
//!   fixed-length and contain nothing a peer chose. A transfer owns the slot
//!   while it holds an exclusive `flock` on the `.part` file;
//! - an **anonymous temporary file** `.socklab-tmp-<pid>-<random>`, used when
//!   the slot of that name is busy (another transfer of the same name is
//!   running) or for raw receives. It is never kept: it is placed or removed.
//!
//! Working files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and mode 0600.
//! A finished file is flushed to disk (`fsync`) and then renamed (or, when
//! the receiver does not overwrite, hard-linked, which fails if the name
//! exists) to its final name, so no file under a final name is ever partial.
//!
//! All file-system calls run on tokio's blocking pool.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher as _};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::statvfs::statvfs;
use socklab_frame::{DigestAlg, DIGEST_LEN};

use super::{digest_hex, hex, CHUNK, RESERVED_PREFIX};

/// The most bytes of a sidecar file that are read; a real one has ~200.
const META_MAX: u64 = 4096;

/// The first line of a sidecar file.
const META_MAGIC: &str = "socklab-partial 1";

/// How many resume slots' hasher states are remembered (a few KiB each).
const STATES_KEPT: usize = 64;

/// What a `.part` file looked like when its hasher state was taken: its
/// inode, length and change times. Any write, truncation or replacement
/// changes one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Look {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Look {
    fn of(meta: &fs::Metadata) -> Look {
        Look {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A verified hasher state of a kept partial: BLAKE3 fed bytes `0 ..
/// held` of the `.part` file that looked like `look`.
struct State {
    look: Look,
    held: u64,
    digest: [u8; DIGEST_LEN],
    hasher: blake3::Hasher,
}

/// The hasher states of kept partials, newest last (issue 10 item 14: a
/// resume must not re-hash the whole partial). BLAKE3's state cannot be
/// written into the sidecar, so it is kept here, in memory, for as long as
/// this process runs, and used only while the `.part` file is untouched
/// (same inode, length and change times) and the sidecar says the same
/// length and digest. A restart, or any change to the file, costs one
/// verification (a re-hash); a stream of resume headers costs none.
static STATES: std::sync::Mutex<std::collections::VecDeque<State>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// Remembers the hasher state of a partial just kept.
fn remember(look: Look, held: u64, digest: [u8; DIGEST_LEN], hasher: blake3::Hasher) {
    let mut states = STATES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    states.retain(|s| (s.look.dev, s.look.ino) != (look.dev, look.ino));
    if states.len() >= STATES_KEPT {
        states.pop_front();
    }
    states.push_back(State {
        look,
        held,
        digest,
        hasher,
    });
}

/// The remembered hasher state of a partial that still looks like `look`
/// and holds `held` bytes of BLAKE3 `digest`.
fn recall(look: Look, held: u64, digest: &[u8; DIGEST_LEN]) -> Option<blake3::Hasher> {
    let states = STATES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    states
        .iter()
        .find(|s| s.look == look && s.held == held && &s.digest == digest)
        .map(|s| s.hasher.clone())
}

/// Bytes of kept partials re-hashed from disk, by directory (tests count
/// what a resume costs).
#[cfg(test)]
pub(super) static REHASHED: std::sync::Mutex<std::collections::BTreeMap<PathBuf, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Runs a blocking file-system closure on tokio's blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(io::Error::other(format!("file task failed: {e}"))),
    }
}

/// `lstat`: the metadata of `path` itself, not of a link's target.
pub(super) async fn symlink_metadata(path: &Path) -> io::Result<fs::Metadata> {
    let path = path.to_owned();
    blocking(move || fs::symlink_metadata(path)).await
}

/// Whether an I/O error means the disk (or the quota) is full.
pub(super) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Bytes available to an unprivileged writer on the file system holding
/// `dir` (`statvfs`: free blocks for users times the fragment size).
pub(super) async fn available_space(dir: &Path) -> io::Result<u64> {
    if dir.as_os_str().as_bytes().contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains NUL",
        ));
    }
    let dir = dir.to_owned();
    blocking(move || {
        let st = statvfs(&dir)?;
        // The field types differ between platforms (u32 or u64).
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let (blocks, frsize) = (
            u64::from(st.blocks_available()),
            u64::from(st.fragment_size()),
        );
        Ok(blocks.saturating_mul(frsize))
    })
    .await
}

/// Takes an exclusive `flock` on `file` without waiting; gives the file
/// back if another holder has it. The lock goes with the returned
/// [`Flock`] (and so with the file: it is released when the file closes).
fn try_lock(file: File) -> io::Result<Result<Flock<File>, File>> {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(Ok(locked)),
        Err((file, Errno::EWOULDBLOCK)) => Ok(Err(file)),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// Creates `path` exclusively (`O_EXCL|O_NOFOLLOW`, mode 0600), for reading
/// and writing.
fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// A random 64-bit number (std's per-process random hash keys, mixed with a
/// counter), for temporary names.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The key of a destination name's resume slot: 32 hex digits of the BLAKE3
/// of the name's bytes (domain-separated).
pub(super) fn slot_key(name: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"socklab resume slot\0");
    h.update(name);
    let full = digest_hex(h.finalize().as_bytes());
    full.get(..32).unwrap_or(&full).to_owned()
}

/// A file opened for blocking I/O that async code drives chunk by chunk on
/// the blocking pool. Errors are the OS's own, for each call (unlike a
/// write-behind file, nothing is reported late).
pub(super) struct DiskFile {
    file: Arc<Handle>,
}

/// An open file, with the exclusive `flock` this side holds on it (a
/// claimed resume slot) or without one. The lock lasts while the file is
/// open here.
pub(super) enum Handle {
    /// A file without a lock.
    Plain(File),
    /// A file this side holds an exclusive `flock` on.
    Locked(Flock<File>),
}

impl Deref for Handle {
    type Target = File;

    fn deref(&self) -> &File {
        match self {
            Handle::Plain(file) => file,
            Handle::Locked(locked) => locked,
        }
    }
}

impl DiskFile {
    /// Wraps an open file.
    pub(super) fn new(file: File) -> DiskFile {
        DiskFile {
            file: Arc::new(Handle::Plain(file)),
        }
    }

    /// Wraps an open file that this side holds a `flock` on; the lock goes
    /// when the file closes.
    fn locked(file: Flock<File>) -> DiskFile {
        DiskFile {
            file: Arc::new(Handle::Locked(file)),
        }
    }

    /// Opens `path` for reading, following symbolic links (a local file the
    /// user named).
    pub(super) async fn open_read(path: &Path) -> io::Result<DiskFile> {
        let path = path.to_owned();
        blocking(move || File::open(path)).await.map(DiskFile::new)
    }

    /// The open file itself, for the transfer thread's blocking I/O.
    pub(super) fn share(&self) -> Arc<Handle> {
        Arc::clone(&self.file)
    }

    /// The file's metadata (`fstat`).
    pub(super) async fn metadata(&self) -> io::Result<fs::Metadata> {
        let file = Arc::clone(&self.file);
        blocking(move || file.metadata()).await
    }

    /// Reads up to `want` bytes (at most `buf.len()`) at the current
    /// position into `buf`; returns the buffer and how many bytes were read
    /// (0 at end of file).
    pub(super) async fn read(&self, mut buf: Vec<u8>, want: usize) -> (Vec<u8>, io::Result<usize>) {
        let file = Arc::clone(&self.file);
        let want = want.min(buf.len());
        let joined = tokio::task::spawn_blocking(move || {
            let n = (&**file).read(&mut buf[..want]);
            (buf, n)
        })
        .await;
        match joined {
            Ok(done) => done,
            Err(e) => (
                vec![0; CHUNK],
                Err(io::Error::other(format!("file task failed: {e}"))),
            ),
        }
    }

    /// Writes all of `data` at the current position.
    pub(super) async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        let data = data.to_vec();
        blocking(move || (&**file).write_all(&data)).await
    }

    /// Cuts the file to `len` bytes and moves the position there.
    pub(super) async fn truncate_to(&self, len: u64) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        blocking(move || {
            file.set_len(len)?;
            (&**file).seek(SeekFrom::Start(len)).map(|_| ())
        })
        .await
    }

    /// Moves the position to `pos`.
    pub(super) async fn seek(&self, pos: u64) -> io::Result<()> {
        let file = Arc::clone(&self.file);
        blocking(move || (&**file).seek(SeekFrom::Start(pos)).map(|_| ())).await
    }

    /// Gives the file mode 0600 (what a stored file has, whatever made it)
    /// and flushes it to disk.
    pub(super) async fn seal(&self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let file = Arc::clone(&self.file);
        blocking(move || {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
            file.sync_all()
        })
        .await
    }
}

/// What a resume slot's sidecar says about the bytes of its `.part` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    /// The name of the transfer the bytes belong to (for a download, the
    /// remote name).
    pub name: String,
    /// The declared size of the whole file.
    pub size: u64,
    /// The digest algorithm of that transfer.
    pub alg: DigestAlg,
    /// How many bytes of the `.part` file are the file's first bytes.
    pub held: u64,
    /// BLAKE3 of bytes `0 .. held`.
    pub digest: [u8; DIGEST_LEN],
}

impl Meta {
    /// The sidecar's text.
    pub(super) fn encode(&self) -> String {
        format!(
            "{META_MAGIC}\nname {}\nsize {}\nalg {}\nheld {}\nblake3 {}\n",
            hex(self.name.as_bytes()),
            self.size,
            self.alg.id(),
            self.held,
            digest_hex(&self.digest),
        )
    }

    /// Parses a sidecar's text; `None` if it is not exactly what
    /// [`Meta::encode`] writes.
    pub(super) fn parse(text: &str) -> Option<Meta> {
        let mut lines = text.lines();
        if lines.next()? != META_MAGIC {
            return None;
        }
        let mut field = |key: &str| {
            let line = lines.next()?;
            let (k, v) = line.split_once(' ')?;
            (k == key).then_some(v)
        };
        let name = String::from_utf8(from_hex(field("name")?)?).ok()?;
        let size = field("size")?.parse().ok()?;
        let alg = DigestAlg::from_id(field("alg")?.parse().ok()?)?;
        let held: u64 = field("held")?.parse().ok()?;
        let digest = from_hex(field("blake3")?)?.try_into().ok()?;
        if lines.next().is_some() || held > size {
            return None;
        }
        Some(Meta {
            name,
            size,
            alg,
            held,
            digest,
        })
    }
}

/// Decodes lowercase or uppercase hex; `None` if it is not hex.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 2 * 1024 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why a finished file could not be given its final name.
#[derive(Debug)]
pub(super) enum PlaceError {
    /// Something exists under the final name and the receiver does not
    /// overwrite.
    Exists,
    /// The rename, link, flush or unlink failed.
    Io(io::Error),
}

/// The working file of one transfer: a resume slot or an anonymous
/// temporary file. Dropping it without [`Work::keep`], [`Work::place`] or
/// [`Work::discard`] removes what it wrote (a cancelled transfer leaves
/// nothing behind but a resumable partial it did not touch).
pub(super) struct Work {
    /// The open working file.
    pub file: DiskFile,
    /// Its path.
    path: PathBuf,
    /// The slot's sidecar path; `None` for an anonymous temporary file.
    meta: Option<PathBuf>,
    /// The slot's `.part` file still holds a valid partial that this
    /// transfer has not touched: leave both files on drop.
    untouched_partial: bool,
    /// Kept, placed or discarded: nothing to do on drop.
    done: bool,
    /// The final path this working file is for, and what was there when
    /// the transfer started (`None`: nothing); `None` for a temporary file
    /// that never keeps. A partial is not kept when a complete file was
    /// stored under that name meanwhile (issue 10 item 16).
    dest: Option<(PathBuf, Option<Look>)>,
    /// Held while the resume record is written, and by a drop that cleans
    /// up: `true` once dropped, so a record still being written when its
    /// transfer is cancelled is not left behind (issue 10 item 10).
    closing: Arc<std::sync::Mutex<bool>>,
}

/// A file just created by this side, removed when dropped unless taken:
/// a creation whose transfer was cancelled meanwhile leaves nothing.
struct Created {
    /// The file, and whether this call created it.
    file: Option<(Flock<File>, bool)>,
    /// The path to remove if it was created and is not taken.
    path: PathBuf,
}

impl Created {
    fn take(mut self) -> Option<(Flock<File>, bool)> {
        self.file.take()
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if let Some((_, true)) = self.file {
            let _ = remove_if_present(&self.path);
        }
    }
}

/// What is at `path` now (`None`: nothing, or it cannot be looked at).
fn look_at(path: &Path) -> Option<Look> {
    fs::symlink_metadata(path).ok().map(|m| Look::of(&m))
}

impl Work {
    /// Opens the working file for destination `name` in `dir`: its resume
    /// slot if no other transfer holds it, else an anonymous temporary file.
    ///
    /// # Errors
    ///
    /// The OS error of creating the file (permissions, a missing directory,
    /// no space for a directory entry).
    pub(super) async fn open(dir: &Path, name: &[u8]) -> io::Result<Work> {
        let key = slot_key(name);
        let part = dir.join(format!("{RESERVED_PREFIX}{key}.part"));
        let meta = dir.join(format!("{RESERVED_PREFIX}{key}.meta"));
        let dest = dir.join(std::ffi::OsStr::from_bytes(name));
        let (claim, before) = {
            let (part, dest) = (part.clone(), dest.clone());
            blocking(move || {
                let before = look_at(&dest);
                let claim = claim_slot(&part)?.map(|file| Created {
                    file: Some(file),
                    path: part,
                });
                Ok((claim, before))
            })
            .await?
        };
        match claim.and_then(Created::take) {
            // Until `held` has looked at it, a slot this transfer did not
            // create may hold a partial of another: never remove it
            // unexamined.
            Some((file, created)) => Ok(Work {
                file: DiskFile::locked(file),
                path: part,
                meta: Some(meta),
                untouched_partial: !created,
                done: false,
                dest: Some((dest, before)),
                closing: Arc::default(),
            }),
            None => Work::temp(dir).await,
        }
    }

    /// Creates an anonymous temporary file in `dir`.
    ///
    /// # Errors
    ///
    /// The OS error of creating the file.
    pub(super) async fn temp(dir: &Path) -> io::Result<Work> {
        let dir = dir.to_owned();
        let created = blocking(move || {
            let pid = std::process::id();
            let mut last = None;
            for _ in 0..16 {
                let path = dir.join(format!("{RESERVED_PREFIX}tmp-{pid}-{:016x}", random_u64()));
                match create_exclusive(&path) {
                    Ok(file) => {
                        return Ok(TempCreated {
                            file: Some(file),
                            path,
                        })
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
        })
        .await?;
        let path = created.path.clone();
        let file = created
            .take()
            .ok_or_else(|| io::Error::other("temporary file taken twice"))?;
        Ok(Work {
            file: DiskFile::new(file),
            path,
            meta: None,
            untouched_partial: false,
            done: false,
            dest: None,
            closing: Arc::default(),
        })
    }

    /// Whether this is a resume slot (a cut transfer can keep its bytes).
    pub(super) fn is_slot(&self) -> bool {
        self.meta.is_some()
    }

    /// The working file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The partial data this slot holds for a transfer that `matches`, after
    /// checking that the bytes on disk still have the sidecar's digest.
    ///
    /// Returns the sidecar and a hasher fed with the first
    /// `min(held, limit)` bytes: a partial this process kept and that has
    /// not changed since is not re-read (its hasher state is remembered),
    /// any other is re-hashed once. A partial that does not match, whose
    /// sidecar is unreadable or whose bytes changed, or any partial when
    /// `limit` is 0 (the sender starts afresh), is discarded (the `.part`
    /// file emptied, the sidecar removed) and `None` returned. Does not
    /// change a partial it returns: call [`Work::truncate_to`] before
    /// writing.
    ///
    /// # Errors
    ///
    /// The OS error of reading or emptying the slot.
    pub(super) async fn held(
        &mut self,
        matches: impl FnOnce(&Meta) -> bool,
        limit: u64,
    ) -> io::Result<Option<(Meta, blake3::Hasher)>> {
        let Some(meta_path) = self.meta.clone() else {
            return Ok(None);
        };
        if limit == 0 {
            // The sender starts afresh: whatever is held goes.
            self.empty_slot().await?;
            return Ok(None);
        }
        let meta = blocking(move || read_meta(&meta_path)).await?;
        if let Some(meta) = meta.filter(matches) {
            let stat = self.file.metadata().await?;
            let len = stat.len();
            if meta.held <= limit {
                if let Some(hasher) = recall(Look::of(&stat), meta.held, &meta.digest) {
                    self.untouched_partial = true;
                    return Ok(Some((meta, hasher)));
                }
            }
            if len >= meta.held {
                let stop = meta.held.min(limit);
                let (whole, at_stop) = self.hash_prefix(meta.held, stop).await?;
                if whole == meta.digest {
                    self.untouched_partial = true;
                    return Ok(Some((meta, at_stop)));
                }
            }
        }
        self.empty_slot().await?;
        Ok(None)
    }

    /// Hashes bytes `0 .. len` of the working file; returns that digest and
    /// a hasher stopped after the first `stop` bytes (`stop <= len`).
    async fn hash_prefix(&self, len: u64, stop: u64) -> io::Result<([u8; 32], blake3::Hasher)> {
        self.file.seek(0).await?;
        let mut hasher = blake3::Hasher::new();
        let mut at_stop = (stop == 0).then(blake3::Hasher::new);
        let mut buf = vec![0; CHUNK];
        let mut pos = 0u64;
        while pos < len {
            let want = usize::try_from(len - pos).unwrap_or(CHUNK).min(CHUNK);
            let (back, n) = self.file.read(buf, want).await;
            buf = back;
            let n = n?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "partial file shorter than its sidecar says",
                ));
            }
            #[cfg(test)]
            if let Some(dir) = self.path.parent() {
                let mut counts = REHASHED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *counts.entry(dir.to_owned()).or_default() += n as u64;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            if at_stop.is_none() && pos + n as u64 >= stop {
                let cut = usize::try_from(stop - pos).unwrap_or(n);
                hasher.update(chunk.get(..cut).unwrap_or_default());
                at_stop = Some(hasher.clone());
                hasher.update(chunk.get(cut..).unwrap_or_default());
            } else {
                hasher.update(chunk);
            }
            pos += n as u64;
        }
        Ok((*hasher.finalize().as_bytes(), at_stop.unwrap_or(hasher)))
    }

    /// Empties the slot: no bytes, no sidecar.
    async fn empty_slot(&mut self) -> io::Result<()> {
        self.untouched_partial = false;
        self.file.truncate_to(0).await?;
        if let Some(meta) = self.meta.clone() {
            blocking(move || remove_if_present(&meta)).await?;
        }
        Ok(())
    }

    /// Keeps the first `len` bytes and positions the file after them, ready
    /// for the data. From now on the working file is this transfer's.
    ///
    /// # Errors
    ///
    /// The OS error of `ftruncate` or `lseek`.
    pub(super) async fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        self.untouched_partial = false;
        self.file.truncate_to(len).await
    }

    /// Keeps the slot's bytes for a later resume: flushes them to disk and
    /// writes the sidecar `meta` (atomically: a new file renamed over the
    /// old). An anonymous temporary file, or `meta.held == 0`, keeps
    /// nothing: the files are removed. Returns the bytes kept.
    ///
    /// # Errors
    ///
    /// The OS error of flushing or of writing the sidecar; the files are
    /// removed then.
    pub(super) async fn keep(&mut self, meta: &Meta, hasher: &blake3::Hasher) -> io::Result<u64> {
        let Some(meta_path) = self.meta.clone().filter(|_| meta.held > 0) else {
            self.discard().await;
            return Ok(0);
        };
        let file = Arc::clone(&self.file.file);
        let closing = Arc::clone(&self.closing);
        let dest = self.dest.clone();
        let (text, held) = (meta.encode(), meta.held);
        // One blocking call, under the lock a drop takes: the record is
        // written whole before a cancelled transfer's clean-up runs, or not
        // at all after it.
        let kept = blocking(move || {
            let closed = closing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *closed {
                return Ok(None);
            }
            if let Some((dest, before)) = &dest {
                if look_at(dest) != *before {
                    return Err(io::Error::other(
                        "a complete file of this name was stored while this transfer ran",
                    ));
                }
            }
            file.set_len(held)?;
            file.sync_all()?;
            write_meta(&meta_path, &text)?;
            Ok(Some(Look::of(&file.metadata()?)))
        })
        .await;
        match kept {
            Ok(Some(look)) => {
                self.done = true;
                remember(look, held, meta.digest, hasher.clone());
                Ok(held)
            }
            Ok(None) => Ok(0),
            Err(e) => {
                self.discard().await;
                Err(e)
            }
        }
    }

    /// Removes the working file (and a slot's sidecar).
    pub(super) async fn discard(&mut self) {
        self.done = true;
        let (path, meta) = (self.path.clone(), self.meta.clone());
        // Removal is best effort: a file that cannot be removed is
        // still only a hidden working file, never a final name.
        let _ = blocking(move || {
            remove_if_present(&path)?;
            match meta {
                Some(meta) => remove_if_present(&meta),
                None => Ok(()),
            }
        })
        .await;
    }

    /// Gives the finished file its final name `dest` (in the same
    /// directory): flushes it to disk, then renames it over `dest` when
    /// `overwrite`, else links it to `dest` (which fails if `dest` exists:
    /// no window in which a concurrent file could be replaced), and flushes
    /// the directory. On error the working file is left for the caller to
    /// [`Work::discard`].
    ///
    /// # Errors
    ///
    /// [`PlaceError::Exists`] when `dest` exists and `!overwrite`;
    /// [`PlaceError::Io`] for a failed flush, rename or link.
    pub(super) async fn place(&mut self, dest: &Path, overwrite: bool) -> Result<(), PlaceError> {
        self.file.seal().await.map_err(PlaceError::Io)?;
        let (path, meta, dest) = (self.path.clone(), self.meta.clone(), dest.to_owned());
        blocking(move || Ok(place_sync(&path, meta.as_deref(), &dest, overwrite)))
            .await
            .map_err(PlaceError::Io)??;
        self.done = true;
        Ok(())
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        if self.done || self.untouched_partial {
            return;
        }
        // A transfer that ended without a verdict (its task was cancelled):
        // what it wrote is not known to be flushed, so it is not kept. The
        // lock waits for a resume record being written, and stops one not
        // yet begun.
        let mut closed = self
            .closing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *closed = true;
        let _ = remove_if_present(&self.path);
        if let Some(meta) = &self.meta {
            let _ = remove_if_present(meta);
            let _ = remove_if_present(&new_meta_path(meta));
        }
    }
}

/// A temporary file just created, removed when dropped unless taken.
struct TempCreated {
    file: Option<File>,
    path: PathBuf,
}

impl TempCreated {
    fn take(mut self) -> Option<File> {
        self.file.take()
    }
}

impl Drop for TempCreated {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = remove_if_present(&self.path);
        }
    }
}

/// Removes a file; a missing file is not an error.
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens and locks the resume slot's `.part` file, and says whether this
/// call created it; `None` if the slot is busy (locked by another
/// transfer) or cannot be made ours (a directory there), in which case the
/// transfer uses a temporary file instead.
///
/// A `.part` this side did not make (issue 10 item 16) is never used: one
/// that is not a regular file with one link, owned by this user, mode 0600
/// (a file or link planted there, or left by another user) is removed,
/// with its sidecar, and a fresh slot is created in its place.
fn claim_slot(part: &Path) -> io::Result<Option<(Flock<File>, bool)>> {
    for _ in 0..4 {
        let (file, created) = match create_exclusive(part) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(part)
                {
                    Ok(file) => (file, false),
                    // Renamed away by a transfer that just finished.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    // A symbolic link (ELOOP) or something we may not open:
                    // not ours.
                    Err(_) => {
                        if replace_foreign(part)? {
                            continue;
                        }
                        return Ok(None);
                    }
                }
            }
            Err(e) => return Err(e),
        };
        let st = file.metadata()?;
        if !created && !is_ours(&st) {
            drop(file);
            if replace_foreign(part)? {
                continue;
            }
            return Ok(None);
        }
        if !st.is_file() || st.nlink() != 1 {
            return Ok(None);
        }
        let Ok(file) = try_lock(file)? else {
            return Ok(None);
        };
        // The lock is on an inode; make sure it is still the slot's, not
        // one a finishing transfer renamed to its final name meanwhile.
        match fs::symlink_metadata(part) {
            Ok(now) if now.dev() == st.dev() && now.ino() == st.ino() => {
                return Ok(Some((file, created)))
            }
            _ => continue,
        }
    }
    Ok(None)
}

/// Whether an existing `.part` file is one this side made: a regular file
/// with one link, owned by this user, mode 0600.
fn is_ours(st: &fs::Metadata) -> bool {
    st.is_file()
        && st.nlink() == 1
        && st.uid() == nix::unistd::geteuid().as_raw()
        && st.mode() & 0o7777 == 0o600
}

/// Removes a `.part` that is not ours (and its sidecar, which describes
/// bytes that are not ours either). Returns whether it could (`false` for
/// a directory, or no permission): the slot is then not used.
fn replace_foreign(part: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(part) {
        Ok(st) if st.is_dir() => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(_) => return Ok(false),
    }
    if fs::remove_file(part).is_err() {
        return Ok(false);
    }
    let meta = part.with_extension("meta");
    let _ = remove_if_present(&meta);
    Ok(true)
}

/// Reads a slot's sidecar; `None` if there is none or it is not valid.
fn read_meta(path: &Path) -> io::Result<Option<Meta>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // A link or a special file planted there: not a sidecar of ours.
        Err(_) => return Ok(None),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut text = String::new();
    if file.take(META_MAX).read_to_string(&mut text).is_err() {
        return Ok(None);
    }
    Ok(Meta::parse(&text))
}

/// Where a slot's sidecar is written before it is renamed into place.
fn new_meta_path(meta: &Path) -> PathBuf {
    let mut new = meta.as_os_str().to_owned();
    new.push("-new");
    PathBuf::from(new)
}

/// Writes a slot's sidecar: a new file, flushed, renamed over the old one.
fn write_meta(path: &Path, text: &str) -> io::Result<()> {
    let new = new_meta_path(path);
    remove_if_present(&new)?;
    let mut file = create_exclusive(&new)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&new, path)
}

/// Holds the regular file `dest` that a rename is about to replace, if
/// there is one: while this descriptor is open, the rename only drops a
/// name, and the replaced file's pages are freed when it closes. `O_PATH`
/// opens nothing (no read permission needed, no device touched): it only
/// pins the file.
fn hold_replaced(dest: &Path) -> Option<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(dest)
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// Closes a replaced file on a thread of its own. Freeing a big file's
/// pages is slow (0.13 s for 1 GiB on tmpfs, measured), and it stood
/// between the last byte and the verdict of every `overwrite` transfer.
fn release_later(replaced: Option<File>) {
    if let Some(file) = replaced {
        let spawned = std::thread::Builder::new()
            .name("socklab-release".to_owned())
            .spawn(move || drop(file));
        // No thread: the close happens here, as before.
        drop(spawned);
    }
}

/// The blocking part of [`Work::place`]: the outer error is the
/// file-system's, the inner one says whether the name was free.
fn place_sync(
    path: &Path,
    meta: Option<&Path>,
    dest: &Path,
    overwrite: bool,
) -> Result<(), PlaceError> {
    if overwrite {
        let replaced = hold_replaced(dest);
        fs::rename(path, dest).map_err(PlaceError::Io)?;
        release_later(replaced);
    } else {
        match fs::hard_link(path, dest) {
            Ok(()) => remove_if_present(path).map_err(PlaceError::Io)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(PlaceError::Exists),
            // A file system without hard links (FAT, some FUSE): check,
            // then rename. Not atomic against a concurrent creator.
            Err(_) => {
                if fs::symlink_metadata(dest).is_ok() {
                    return Err(PlaceError::Exists);
                }
                fs::rename(path, dest).map_err(PlaceError::Io)?;
            }
        }
    }
    if let Some(meta) = meta {
        remove_if_present(meta).map_err(PlaceError::Io)?;
    }
    // The new name is durable once the directory is flushed. The file is in
    // place either way; a directory that cannot be fsynced is no failure.
    if let Some(dir) = dest.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
