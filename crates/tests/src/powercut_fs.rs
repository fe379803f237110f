//! A FUSE filesystem that keeps only what was fsynced: power loss on real processes.
//!
//! In the manner of LazyFS: every file's data is held in memory twice, as the processes see
//! it and as a disk would have it after a power cut. A write (a `write(2)`, or a page of a
//! shared mapping the kernel writes back) changes only the first; an `fsync`/`fdatasync`
//! of the file (or an `msync` of its mapping) makes the file's current data its durable
//! data. [`PowerCutFs::power_cut`], once every process using the filesystem is dead, throws
//! away everything not fsynced, together with the kernel's page cache of the mount (it
//! unmounts and mounts again), so a process started afterwards sees only what a disk would
//! still hold.
//!
//! Namespace operations (create, mkdir, rename, unlink, truncate, fallocate's size) are
//! durable at once, as LazyFS has them: the store fsyncs directories after a rename anyway,
//! and what this filesystem is for is the loss of unsynced data, the failure that
//! ASYNC_FLUSH and replication have to answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

const PAGE: usize = 4096;
/// How long the kernel may cache names and attributes: only this filesystem changes them.
const TTL: Duration = Duration::from_secs(1);

type Page = Arc<[u8; PAGE]>;

/// What one [`PowerCutFs::power_cut`] threw away.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CutReport {
    /// Pages written but never fsynced: restored to their durable content, or still dirty
    /// in the kernel at the cut and thrown away when it wrote them back.
    pub pages_lost: u64,
    /// Files whose size went back to their last fsynced size.
    pub files_shortened: u64,
}

#[derive(Default)]
struct FileData {
    size: u64,
    durable_size: u64,
    /// Absent pages read as zeros.
    pages: HashMap<u64, Page>,
    durable: HashMap<u64, Page>,
    /// Pages whose current content may differ from their durable content.
    dirty: BTreeSet<u64>,
}

impl FileData {
    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        let end = self.size.min(offset.saturating_add(len as u64));
        if offset >= end {
            return Vec::new();
        }
        let mut out = vec![0u8; (end - offset) as usize];
        let mut at = offset;
        while at < end {
            let page = at / PAGE as u64;
            let within = (at % PAGE as u64) as usize;
            let n = (PAGE - within).min((end - at) as usize);
            if let Some(bytes) = self.pages.get(&page) {
                let from = (at - offset) as usize;
                out[from..from + n].copy_from_slice(&bytes[within..within + n]);
            }
            at += n as u64;
        }
        out
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let page = at / PAGE as u64;
            let within = (at % PAGE as u64) as usize;
            let n = (PAGE - within).min(data.len() - done);
            let bytes = self
                .pages
                .entry(page)
                .or_insert_with(|| Arc::new([0u8; PAGE]));
            Arc::make_mut(bytes)[within..within + n].copy_from_slice(&data[done..done + n]);
            self.dirty.insert(page);
            done += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    fn zero(&mut self, offset: u64, len: u64) {
        const CHUNK: usize = 1 << 20;
        let zeros = vec![0u8; CHUNK];
        let mut at = offset;
        let end = offset.saturating_add(len);
        while at < end {
            let n = ((end - at) as usize).min(CHUNK);
            self.write(at, &zeros[..n]);
            at += n as u64;
        }
    }

    /// A size change is a namespace operation here: durable at once.
    fn set_size(&mut self, size: u64) {
        if size < self.size {
            let first_gone = size.div_ceil(PAGE as u64);
            for pages in [&mut self.pages, &mut self.durable] {
                pages.retain(|page, _| *page < first_gone);
                let within = (size % PAGE as u64) as usize;
                if within != 0 {
                    if let Some(bytes) = pages.get_mut(&(size / PAGE as u64)) {
                        Arc::make_mut(bytes)[within..].fill(0);
                    }
                }
            }
            self.dirty.retain(|page| *page < first_gone);
        }
        self.size = size;
        self.durable_size = size;
    }

    fn sync(&mut self) {
        for page in std::mem::take(&mut self.dirty) {
            match self.pages.get(&page) {
                Some(bytes) => self.durable.insert(page, Arc::clone(bytes)),
                None => self.durable.remove(&page),
            };
        }
        self.durable_size = self.size;
    }

    fn cut(&mut self, report: &mut CutReport) {
        for page in std::mem::take(&mut self.dirty) {
            let durable = self.durable.get(&page).cloned();
            let current = self.pages.get(&page);
            if current.map(|c| &c[..]) != durable.as_ref().map(|d| &d[..]) {
                report.pages_lost += 1;
            }
            match durable {
                Some(bytes) => self.pages.insert(page, bytes),
                None => self.pages.remove(&page),
            };
        }
        if self.size != self.durable_size {
            report.files_shortened += 1;
            self.size = self.durable_size;
        }
    }
}

enum Kind {
    Dir(BTreeMap<OsString, u64>),
    File(FileData),
}

struct Node {
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    nlink: u32,
    open: u32,
    mtime: SystemTime,
    ctime: SystemTime,
    atime: SystemTime,
}

impl Node {
    fn new(kind: Kind, perm: u16, uid: u32, gid: u32) -> Node {
        let now = SystemTime::now();
        Node {
            nlink: if matches!(kind, Kind::Dir(_)) { 2 } else { 1 },
            kind,
            perm,
            uid,
            gid,
            open: 0,
            mtime: now,
            ctime: now,
            atime: now,
        }
    }

    /// A node a request creates: its caller's owner, its mode less the umask.
    fn made_by(req: &Request, kind: Kind, mode: u32, umask: u32) -> Node {
        Node::new(kind, (mode & !umask & 0o7777) as u16, req.uid(), req.gid())
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let (size, kind) = match &self.kind {
            Kind::Dir(_) => (4096, FileType::Directory),
            Kind::File(data) => (data.size, FileType::RegularFile),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.ctime,
            kind,
            perm: self.perm,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        }
    }
}

/// The whole tree; it outlives mounts, as a disk outlives the machine's power.
struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Set from a cut until power comes back: writes (the kernel's writeback of pages it
    /// still held dirty) and fsyncs change nothing.
    discarding: bool,
    /// Pages written while discarding.
    late_pages: u64,
    /// The disk is full: whatever needs new blocks fails with ENOSPC (writes into a file's
    /// existing length still succeed, as they do into blocks a filesystem already holds).
    full: bool,
}

impl Tree {
    fn new() -> Tree {
        let mut nodes = HashMap::new();
        let root = Node::new(Kind::Dir(BTreeMap::new()), 0o755, 0, 0);
        nodes.insert(INodeNo::ROOT.0, root);
        Tree {
            nodes,
            next_ino: INodeNo::ROOT.0 + 1,
            discarding: false,
            late_pages: 0,
            full: false,
        }
    }

    fn children(&self, ino: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get(&ino).map(|n| &n.kind) {
            Some(Kind::Dir(children)) => Ok(children),
            Some(Kind::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn children_mut(&mut self, ino: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::Dir(children)) => Ok(children),
            Some(Kind::File(_)) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileData, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.kind) {
            Some(Kind::File(data)) => Ok(data),
            Some(Kind::Dir(_)) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, node: Node) -> Result<FileAttr, Errno> {
        if self.full {
            return Err(Errno::ENOSPC);
        }
        let children = self.children(parent)?;
        if children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let is_dir = matches!(node.kind, Kind::Dir(_));
        let attr = node.attr(ino);
        self.nodes.insert(ino, node);
        self.children_mut(parent)?.insert(name.to_owned(), ino);
        if let Some(parent) = self.nodes.get_mut(&parent) {
            parent.mtime = SystemTime::now();
            if is_dir {
                parent.nlink += 1;
            }
        }
        Ok(attr)
    }

    /// Drops a name; the node goes once no name and no open handle holds it.
    fn drop_link(&mut self, ino: u64) {
        let gone = match self.nodes.get_mut(&ino) {
            Some(node) => {
                node.nlink = node.nlink.saturating_sub(1);
                node.ctime = SystemTime::now();
                node.open == 0 && (node.nlink == 0 || matches!(node.kind, Kind::Dir(_)))
            }
            None => false,
        };
        if gone {
            self.nodes.remove(&ino);
        }
    }

    fn remove(&mut self, parent: u64, name: &OsStr, want_dir: bool) -> Result<(), Errno> {
        let ino = *self.children(parent)?.get(name).ok_or(Errno::ENOENT)?;
        match (&self.nodes.get(&ino).ok_or(Errno::ENOENT)?.kind, want_dir) {
            (Kind::Dir(children), true) if !children.is_empty() => return Err(Errno::ENOTEMPTY),
            (Kind::Dir(_), false) => return Err(Errno::EISDIR),
            (Kind::File(_), true) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        self.children_mut(parent)?.remove(name);
        if let Some(parent) = self.nodes.get_mut(&parent) {
            parent.mtime = SystemTime::now();
            if want_dir {
                parent.nlink = parent.nlink.saturating_sub(1);
            }
        }
        self.drop_link(ino);
        Ok(())
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = *self.children(parent)?.get(name).ok_or(Errno::ENOENT)?;
        if let Some(&existing) = self.children(new_parent)?.get(new_name) {
            if existing == ino {
                return Ok(());
            }
            if no_replace {
                return Err(Errno::EEXIST);
            }
            let existing_is_dir = matches!(
                self.nodes.get(&existing).map(|n| &n.kind),
                Some(Kind::Dir(_))
            );
            self.remove(new_parent, new_name, existing_is_dir)?;
        }
        self.children_mut(parent)?.remove(name);
        self.children_mut(new_parent)?
            .insert(new_name.to_owned(), ino);
        let now = SystemTime::now();
        for dir in [parent, new_parent] {
            if let Some(node) = self.nodes.get_mut(&dir) {
                node.mtime = now;
            }
        }
        Ok(())
    }

    fn cut(&mut self) -> CutReport {
        let mut report = CutReport::default();
        for node in self.nodes.values_mut() {
            if let Kind::File(data) = &mut node.kind {
                data.cut(&mut report);
            }
        }
        report
    }
}

/// The FUSE side: answers the kernel's requests from the shared [`Tree`].
struct Session {
    tree: Arc<Mutex<Tree>>,
    /// How long an fsync takes, in microseconds: a disk's latency, which decides how much
    /// unsynced data a power cut can find.
    fsync_micros: Arc<AtomicU64>,
}

impl Session {
    fn tree(&self) -> MutexGuard<'_, Tree> {
        // A panic while holding the lock leaves a tree that is still whole (every change
        // is made in one step), so carry on with it.
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn time(value: TimeOrNow) -> SystemTime {
    match value {
        TimeOrNow::SpecificTime(at) => at,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for Session {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let tree = self.tree();
        let found = tree
            .children(parent.0)
            .and_then(|c| c.get(name).copied().ok_or(Errno::ENOENT))
            .and_then(|ino| {
                tree.nodes
                    .get(&ino)
                    .map(|n| n.attr(ino))
                    .ok_or(Errno::ENOENT)
            });
        match found {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.tree().nodes.get(&ino.0) {
            Some(node) => reply.attr(&TTL, &node.attr(ino.0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut tree = self.tree();
        if let Some(size) = size {
            let full = tree.full;
            match tree.file_mut(ino.0) {
                Ok(data) if full && size > data.size => return reply.error(Errno::ENOSPC),
                Ok(data) => data.set_size(size),
                Err(e) => return reply.error(e),
            }
        }
        let Some(node) = tree.nodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            node.uid = uid;
        }
        if let Some(gid) = gid {
            node.gid = gid;
        }
        if let Some(at) = atime {
            node.atime = time(at);
        }
        if let Some(at) = mtime {
            node.mtime = time(at);
        } else if size.is_some() {
            node.mtime = SystemTime::now();
        }
        node.ctime = SystemTime::now();
        reply.attr(&TTL, &node.attr(ino.0));
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let node = Node::made_by(req, Kind::File(FileData::default()), mode, umask);
        match self.tree().add(parent.0, name, node) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let node = Node::made_by(req, Kind::Dir(BTreeMap::new()), mode, umask);
        match self.tree().add(parent.0, name, node) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.tree().remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.tree().remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self
            .tree()
            .rename(parent.0, name, newparent.0, newname, no_replace)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.tree().nodes.get_mut(&ino.0) {
            Some(node) => {
                node.open += 1;
                reply.opened(FileHandle(0), FopenFlags::empty());
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut node = Node::made_by(req, Kind::File(FileData::default()), mode, umask);
        node.open = 1;
        match self.tree().add(parent.0, name, node) {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.tree().file_mut(ino.0) {
            Ok(data) => reply.data(&data.read(offset, size as usize)),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut tree = self.tree();
        if tree.discarding {
            tree.late_pages += (data.len() as u64).div_ceil(PAGE as u64);
            return reply.written(data.len() as u32);
        }
        let full = tree.full;
        match tree.file_mut(ino.0) {
            Ok(file) if full && offset + data.len() as u64 > file.size => {
                reply.error(Errno::ENOSPC)
            }
            Ok(file) => {
                file.write(offset, data);
                if let Some(node) = tree.nodes.get_mut(&ino.0) {
                    node.mtime = SystemTime::now();
                }
                reply.written(data.len() as u32)
            }
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let mut tree = self.tree();
        let orphan = match tree.nodes.get_mut(&ino.0) {
            Some(node) => {
                node.open = node.open.saturating_sub(1);
                node.open == 0 && node.nlink == 0
            }
            None => false,
        };
        if orphan {
            tree.nodes.remove(&ino.0);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let latency = self.fsync_micros.load(Ordering::Relaxed);
        if latency > 0 {
            // Other requests go on meanwhile: the session runs several threads.
            std::thread::sleep(Duration::from_micros(latency));
        }
        let mut tree = self.tree();
        if tree.discarding {
            return reply.ok();
        }
        match tree.file_mut(ino.0) {
            Ok(file) => {
                file.sync();
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let tree = self.tree();
        let children = match tree.children(ino.0) {
            Ok(children) => children,
            Err(e) => return reply.error(e),
        };
        let dots = [
            (ino.0, FileType::Directory, OsString::from(".")),
            (ino.0, FileType::Directory, OsString::from("..")),
        ];
        let entries = dots.into_iter().chain(children.iter().map(|(name, child)| {
            let kind = match tree.nodes.get(child).map(|n| &n.kind) {
                Some(Kind::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (*child, kind, name.clone())
        }));
        for (index, (child, kind, name)) in entries.enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), index as u64 + 1, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // Plenty of room: the brokers' disk-usage checks must not refuse writes.
        let blocks = 1u64 << 30;
        reply.statfs(
            blocks,
            blocks,
            blocks,
            1 << 20,
            1 << 20,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut tree = self.tree();
        let full = tree.full;
        let file = match tree.file_mut(ino.0) {
            Ok(file) => file,
            Err(e) => return reply.error(e),
        };
        let end = offset.saturating_add(length);
        if full && end > file.size {
            return reply.error(Errno::ENOSPC);
        }
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        match mode & !libc::FALLOC_FL_KEEP_SIZE {
            0 => {}
            libc::FALLOC_FL_ZERO_RANGE => {
                let zero_to = if keep_size { end.min(file.size) } else { end };
                if zero_to > offset {
                    file.zero(offset, zero_to - offset);
                }
            }
            _ => return reply.error(Errno::EOPNOTSUPP),
        }
        if !keep_size && end > file.size {
            file.set_size(end);
        }
        reply.ok();
    }
}

/// A mounted [`Session`] over a tree that survives its cuts.
pub struct PowerCutFs {
    tree: Arc<Mutex<Tree>>,
    fsync_micros: Arc<AtomicU64>,
    mountpoint: PathBuf,
    session: Option<BackgroundSession>,
}

impl PowerCutFs {
    /// Mounts an empty filesystem at `mountpoint` (an existing directory). Needs
    /// `/dev/fuse` and the right to mount (root).
    pub fn mount(mountpoint: &Path) -> Result<PowerCutFs> {
        let mut fs = PowerCutFs {
            tree: Arc::new(Mutex::new(Tree::new())),
            fsync_micros: Arc::default(),
            mountpoint: mountpoint.to_path_buf(),
            session: None,
        };
        fs.attach()?;
        Ok(fs)
    }

    /// Whether this machine can mount FUSE filesystems at all.
    pub fn available() -> bool {
        Path::new("/dev/fuse").exists()
    }

    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Makes every fsync take `latency`, as on a real disk (the default, none, is a disk
    /// faster than any).
    pub fn set_fsync_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.fsync_micros.store(micros, Ordering::Relaxed);
    }

    fn attach(&mut self) -> Result<()> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powercut".to_owned()),
            MountOption::DefaultPermissions,
        ];
        // Reads and writes go on while an fsync waits out its latency.
        config.n_threads = Some(4);
        config.clone_fd = true;
        let session = fuser::spawn_mount(
            Session {
                tree: Arc::clone(&self.tree),
                fsync_micros: Arc::clone(&self.fsync_micros),
            },
            &self.mountpoint,
            &config,
        )
        .with_context(|| format!("mount a FUSE filesystem at {}", self.mountpoint.display()))?;
        self.session = Some(session);
        Ok(())
    }

    fn detach(&mut self) -> Result<()> {
        if let Some(session) = self.session.take() {
            session
                .umount_and_join()
                .with_context(|| format!("unmount {}", self.mountpoint.display()))?;
        }
        Ok(())
    }

    fn tree(&self) -> MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The disk loses power: everything not fsynced is gone, and nothing written or
    /// fsynced from now on is kept. Freeze the processes using it first (SIGSTOP), as a
    /// power loss stops them in the same instant: a process still running would be told
    /// its fsyncs succeeded. Then kill them and [`restore_power`](Self::restore_power).
    pub fn cut_power(&self) -> CutReport {
        let mut tree = self.tree();
        tree.discarding = true;
        tree.late_pages = 0;
        tree.cut()
    }

    /// Power comes back: the kernel's cached pages of the mount go (it unmounts and mounts
    /// again), and what was durable at the cut is what processes find. Every process that
    /// had files open here must be dead: a live one would keep the mount busy.
    /// Returns how many pages the kernel wrote back after the cut (lost with it).
    pub fn restore_power(&mut self) -> Result<u64> {
        let detached = self.detach();
        let late_pages = {
            let mut tree = self.tree();
            tree.discarding = false;
            tree.late_pages
        };
        detached?;
        self.attach()?;
        Ok(late_pages)
    }

    /// Fills the disk (`true`) or frees space again (`false`).
    pub fn set_full(&self, full: bool) {
        self.tree().full = full;
    }

    /// [`cut_power`](Self::cut_power) and [`restore_power`](Self::restore_power) at once, for
    /// when no process has files open here.
    pub fn power_cut(&mut self) -> Result<CutReport> {
        let mut report = self.cut_power();
        report.pages_lost += self.restore_power()?;
        Ok(report)
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            tracing::warn!(error = %e, "could not unmount the power-cut filesystem");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn mounted() -> Option<(tempfile::TempDir, PowerCutFs)> {
        if !PowerCutFs::available() {
            eprintln!("SKIPPED: no /dev/fuse on this machine");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let fs = PowerCutFs::mount(dir.path()).unwrap();
        Some((dir, fs))
    }

    #[test]
    fn a_cut_keeps_only_what_was_fsynced() {
        let Some((_dir, mut fs)) = mounted() else {
            return;
        };
        let path = fs.path().join("log");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"synced").unwrap();
        file.sync_data().unwrap();
        file.write_all(b" and not").unwrap();
        drop(file);
        std::fs::create_dir(fs.path().join("dir")).unwrap();
        std::fs::write(fs.path().join("dir/never-synced"), b"gone").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"synced and not");

        let report = fs.power_cut().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"synced");
        assert_eq!(
            std::fs::read(fs.path().join("dir/never-synced")).unwrap(),
            b""
        );
        assert!(report.pages_lost >= 2, "{report:?}");
    }

    #[test]
    fn a_mapped_page_survives_a_cut_only_after_msync() {
        let Some((_dir, mut fs)) = mounted() else {
            return;
        };
        let path = fs.path().join("segment");
        // Another process maps the file, as the brokers do: a process serving a FUSE
        // filesystem deadlocks on its own mappings of it (an munmap holds the address
        // space while the kernel waits for the writeback only that process can serve).
        let script = format!(
            "import mmap\n\
             f = open({path:?}, 'w+b')\n\
             f.truncate({len})\n\
             m = mmap.mmap(f.fileno(), {len})\n\
             m[0:5] = b'first'\n\
             m.flush()\n\
             m[{page}:{page} + 6] = b'second'\n\
             m.close()\n\
             f.close()\n",
            path = path.display().to_string(),
            len = 2 * PAGE,
            page = PAGE,
        );
        let status = std::process::Command::new("python3")
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(&std::fs::read(&path).unwrap()[PAGE..PAGE + 6], b"second");

        fs.power_cut().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * PAGE);
        assert_eq!(&bytes[..5], b"first");
        assert_eq!(&bytes[PAGE..PAGE + 6], &[0u8; 6]);
    }

    #[test]
    fn a_full_disk_refuses_new_blocks_until_space_is_freed() {
        let Some((_dir, fs)) = mounted() else {
            return;
        };
        let path = fs.path().join("segment");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(PAGE as u64).unwrap();
        fs.set_full(true);
        file.write_all_at(b"inside", 0).unwrap();
        let beyond = file.write_all_at(b"beyond", PAGE as u64).unwrap_err();
        assert_eq!(beyond.raw_os_error(), Some(libc::ENOSPC));
        let new_file = std::fs::File::create(fs.path().join("new")).unwrap_err();
        assert_eq!(new_file.raw_os_error(), Some(libc::ENOSPC));
        fs.set_full(false);
        file.write_all_at(b"beyond", PAGE as u64).unwrap();
        assert_eq!(file.metadata().unwrap().len(), PAGE as u64 + 6);
    }

    #[test]
    fn renames_truncates_and_unlinks_behave_as_on_a_disk() {
        let Some((_dir, mut fs)) = mounted() else {
            return;
        };
        let root = fs.path().to_path_buf();
        let tmp = root.join("state.tmp");
        let file = std::fs::File::create(&tmp).unwrap();
        file.write_all_at(b"term=3", 0).unwrap();
        file.sync_all().unwrap();
        drop(file);
        std::fs::rename(&tmp, root.join("state")).unwrap();
        std::fs::write(root.join("old"), b"x").unwrap();
        std::fs::remove_file(root.join("old")).unwrap();
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("state")]);

        fs.power_cut().unwrap();
        assert_eq!(std::fs::read(root.join("state")).unwrap(), b"term=3");
        assert!(!tmp.exists());
        let file = OpenOptions::new()
            .write(true)
            .open(root.join("state"))
            .unwrap();
        file.set_len(4).unwrap();
        drop(file);
        fs.power_cut().unwrap();
        assert_eq!(std::fs::read(root.join("state")).unwrap(), b"term");
    }
}
