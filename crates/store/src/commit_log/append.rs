//! Appending: a batch stages entries in memory at their deterministic placement (padding
//! the rest of a segment an entry does not fit in), then writes, indexes and publishes them
//! together; marking positions stable as they commit.

use super::*;

impl CommitLog {
    /// Starts an append batch; holds the writer lock until committed or dropped.
    pub fn begin_append(&self) -> Result<AppendBatch<'_>> {
        self.check_writable()?;
        let mut writer = self.writer.lock();
        writer.buf.clear();
        writer.chunks.clear();
        writer.locations.clear();
        let next_index = self.last_index() + 1;
        let write_pos = self.write_pos();
        let last_term = self.last_term();
        Ok(AppendBatch {
            log: self,
            writer,
            next_index,
            write_pos,
            last_term,
            first_index: next_index,
        })
    }

    /// Declares every byte below `pos` immutable: it can be shared without copying and is
    /// never truncated. Never moves backwards; clamped to the write position.
    pub fn mark_stable(&self, pos: u64) {
        let pos = pos.min(self.write_pos());
        let old = self.published.stable_pos.fetch_max(pos, Ordering::AcqRel);
        if pos <= old {
            return;
        }
        let mut at = self.data.segment_start(old);
        // Bounded by the number of segments between the old and new stable position.
        while at < pos {
            if let Some(segment) = self.data.find(at) {
                segment.mark_stable(pos - segment.start());
            }
            at += self.config.segment_len;
        }
    }
}

/// An open append batch. Entries are staged in memory and written, indexed and published
/// together by [`AppendBatch::commit`]; dropping the batch discards them.
pub struct AppendBatch<'a> {
    log: &'a CommitLog,
    writer: MutexGuard<'a, Writer>,
    next_index: u64,
    write_pos: u64,
    last_term: u64,
    first_index: u64,
}

impl AppendBatch<'_> {
    /// Index the next entry will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Term of the last entry staged or held.
    pub fn last_term(&self) -> u64 {
        self.last_term
    }

    /// Bytes staged so far.
    pub fn staged_len(&self) -> usize {
        self.writer.buf.len()
    }

    /// Where a frame with a body of `body_len` bytes would go next.
    pub fn placement(&self, body_len: usize) -> Placement {
        let frame_len = HEADER_LEN + body_len as u64;
        let seg_len = self.log.config.segment_len;
        let seg_end = self.write_pos - self.write_pos % seg_len + seg_len;
        let pos = if self.write_pos + frame_len <= seg_end {
            self.write_pos
        } else {
            seg_end
        };
        Placement {
            index: self.next_index,
            pos,
        }
    }

    /// Stages an entry whose body `fill` writes into the provided buffer, knowing where the
    /// entry will be (so it can patch positions into the body).
    pub fn append_with(
        &mut self,
        kind: EntryKind,
        term: u64,
        channel: u32,
        body_len: usize,
        fill: impl FnOnce(Placement, &mut [u8]) -> Result<()>,
    ) -> Result<Placement> {
        if body_len > self.log.config.max_body_len {
            return Err(StoreError::EntryTooLarge {
                size: body_len,
                max: self.log.config.max_body_len,
            });
        }
        let frame_len = ENTRY_HEADER_LEN + body_len;
        if self.writer.buf.len() + frame_len + BLANK_MIN_LEN > self.log.config.max_batch_bytes {
            return Err(StoreError::BatchTooLarge {
                count: self.writer.locations.len() + 1,
                bytes: self.writer.buf.len() + frame_len,
                max_count: usize::MAX,
                max_bytes: self.log.config.max_batch_bytes,
            });
        }
        if term < self.last_term {
            return Err(StoreError::LogMismatch(format!(
                "term {term} is older than the last term {}",
                self.last_term
            )));
        }
        let placement = self.placement(body_len);
        // Entries go one after another: the next index, never before the write position,
        // and within one segment.
        debug_assert_eq!(placement.index, self.next_index);
        debug_assert!(placement.pos >= self.write_pos);
        debug_assert!(
            placement.pos % self.log.config.segment_len + frame_len as u64
                <= self.log.config.segment_len
        );
        let seg_len = self.log.config.segment_len;
        let writer = &mut *self.writer;
        if placement.pos != self.write_pos {
            // Pad the rest of the segment; the bytes after the marker are already zero.
            let room = (placement.pos - self.write_pos) as usize;
            if room >= BLANK_MIN_LEN {
                let at = writer.buf.len();
                writer.buf.resize(at + BLANK_MIN_LEN, 0);
                let mut marker = [0u8; BLANK_MIN_LEN];
                encode_blank(&mut marker);
                // The marker's length field must say how far the padding reaches.
                marker[4..8].copy_from_slice(&(room as u32).to_be_bytes());
                writer.buf[at..].copy_from_slice(&marker);
                push_chunk(
                    &mut writer.chunks,
                    seg_len,
                    self.write_pos,
                    at,
                    BLANK_MIN_LEN,
                );
            }
        }
        let at = writer.buf.len();
        writer.buf.resize(at + frame_len, 0);
        let body_start = at + ENTRY_HEADER_LEN;
        let filled = fill(
            placement,
            &mut writer.buf[body_start..body_start + body_len],
        );
        if let Err(e) = filled {
            writer.buf.truncate(at);
            if placement.pos != self.write_pos {
                // Undo the padding staged for this entry.
                if let Some((pos, _, len)) = writer.chunks.last().copied() {
                    if pos == self.write_pos && len == BLANK_MIN_LEN {
                        writer.chunks.pop();
                        writer.buf.truncate(writer.buf.len() - BLANK_MIN_LEN);
                    }
                }
            }
            return Err(e);
        }
        let body = &writer.buf[body_start..body_start + body_len];
        let header = EntryHeader {
            kind,
            index: placement.index,
            term,
            pos: placement.pos,
            channel,
            body_crc: crc32c::crc32c(body),
            body_len: body_len as u32,
        };
        let mut header_bytes = [0u8; ENTRY_HEADER_LEN];
        header.encode_into(&mut header_bytes);
        writer.buf[at..body_start].copy_from_slice(&header_bytes);
        push_chunk(&mut writer.chunks, seg_len, placement.pos, at, frame_len);
        writer.locations.push(EntryLocation {
            index: placement.index,
            term,
            pos: placement.pos,
            size: frame_len as u32,
        });
        self.next_index += 1;
        self.write_pos = placement.pos + frame_len as u64;
        self.last_term = term;
        Ok(placement)
    }

    /// Stages an entry made elsewhere (raft: a follower appending what the leader sent).
    /// Its index and position must be exactly where this log would put it.
    pub fn append_entry(&mut self, entry: &Entry) -> Result<()> {
        let expected = self.placement(entry.body.len());
        if entry.index != expected.index || entry.pos != expected.pos {
            return Err(StoreError::LogMismatch(format!(
                "entry {} at {} does not follow this log (expected {} at {})",
                entry.index, entry.pos, expected.index, expected.pos
            )));
        }
        self.append_with(
            entry.kind,
            entry.term,
            entry.channel,
            entry.body.len(),
            |_, out| {
                out.copy_from_slice(&entry.body);
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Stages a frame exactly as given, without decoding or re-checksumming its body (raft:
    /// an entry the leader just framed, or one a follower received and verified). `header`
    /// is the frame's decoded header; it must put the entry exactly where this log places
    /// the next one.
    pub fn append_frame(&mut self, header: &EntryHeader, frame: &[u8]) -> Result<Placement> {
        let body_len = header.body_len as usize;
        if frame.len() != header.size() {
            return Err(StoreError::LogMismatch(format!(
                "frame of {} bytes holds an entry of {}",
                frame.len(),
                header.size()
            )));
        }
        if body_len > self.log.config.max_body_len {
            return Err(StoreError::EntryTooLarge {
                size: body_len,
                max: self.log.config.max_body_len,
            });
        }
        if self.writer.buf.len() + frame.len() + BLANK_MIN_LEN > self.log.config.max_batch_bytes {
            return Err(StoreError::BatchTooLarge {
                count: self.writer.locations.len() + 1,
                bytes: self.writer.buf.len() + frame.len(),
                max_count: usize::MAX,
                max_bytes: self.log.config.max_batch_bytes,
            });
        }
        let placement = self.placement(body_len);
        if header.index != placement.index || header.pos != placement.pos {
            return Err(StoreError::LogMismatch(format!(
                "entry {} at {} does not follow this log (expected {} at {})",
                header.index, header.pos, placement.index, placement.pos
            )));
        }
        if header.term < self.last_term {
            return Err(StoreError::LogMismatch(format!(
                "term {} is older than the last term {}",
                header.term, self.last_term
            )));
        }
        let seg_len = self.log.config.segment_len;
        let writer = &mut *self.writer;
        if placement.pos != self.write_pos {
            stage_padding(writer, seg_len, self.write_pos, placement.pos);
        }
        let at = writer.buf.len();
        writer.buf.extend_from_slice(frame);
        push_chunk(&mut writer.chunks, seg_len, placement.pos, at, frame.len());
        writer.locations.push(EntryLocation {
            index: placement.index,
            term: header.term,
            pos: placement.pos,
            size: frame.len() as u32,
        });
        self.next_index += 1;
        self.write_pos = placement.pos + frame.len() as u64;
        self.last_term = header.term;
        Ok(placement)
    }

    /// Writes, indexes and publishes the staged entries.
    pub fn commit(mut self) -> Result<Appended> {
        let log = self.log;
        let writer = &mut *self.writer;
        let appended = Appended {
            first_index: self.first_index,
            last_index: self.next_index - 1,
            end_pos: self.write_pos,
        };
        if writer.chunks.is_empty() {
            return Ok(appended);
        }
        // The batch continues the published log exactly.
        debug_assert_eq!(appended.first_index, log.last_index() + 1);
        debug_assert!(appended.end_pos >= log.write_pos());
        debug_assert_eq!(
            writer.locations.len() as u64,
            appended.last_index + 1 - appended.first_index
        );
        // Create every file first: running out of space there leaves nothing half written,
        // so the log stays writable once space is freed.
        let mut targets = Vec::with_capacity(writer.chunks.len());
        for &(pos, _, _) in &writer.chunks {
            targets.push(log.data.find_or_create(pos)?);
        }
        let result = (|| -> Result<()> {
            for (segment, &(pos, at, len)) in targets.iter().zip(&writer.chunks) {
                let rel = pos - segment.start();
                let bytes = &writer.buf[at..at + len];
                if log.config.write_through_file {
                    segment.write_through_file(rel, bytes)?;
                } else {
                    segment.write(rel, bytes)?;
                }
            }
            log.index.write(&writer.locations)
        })();
        if let Err(e) = result {
            // Part of the batch may be on disk beyond the published end; refuse further
            // writes rather than risk those bytes chaining onto later entries.
            log.fail(format!("append failed: {e}"));
            return Err(e);
        }
        log.published
            .last_term
            .store(self.last_term, Ordering::Release);
        log.published
            .last_index
            .store(appended.last_index, Ordering::Release);
        log.published
            .write_pos
            .store(appended.end_pos, Ordering::Release);
        writer.buf.clear();
        if writer.buf.capacity() > 4 << 20 {
            writer.buf.shrink_to(1 << 20);
        }
        writer.chunks.clear();
        writer.locations.clear();
        Ok(appended)
    }
}

/// Stages the blank marker that pads a segment from `write_pos` to `next_pos` (the start of
/// the next segment); a room shorter than a marker stays zero.
fn stage_padding(writer: &mut Writer, seg_len: u64, write_pos: u64, next_pos: u64) {
    let room = (next_pos - write_pos) as usize;
    if room >= BLANK_MIN_LEN {
        let mut marker = [0u8; BLANK_MIN_LEN];
        encode_blank(&mut marker);
        // The marker's length field must say how far the padding reaches.
        marker[4..8].copy_from_slice(&(room as u32).to_be_bytes());
        let at = writer.buf.len();
        writer.buf.extend_from_slice(&marker);
        push_chunk(&mut writer.chunks, seg_len, write_pos, at, BLANK_MIN_LEN);
    }
}

/// Adds staged bytes to the write list, merging with the previous run unless that would
/// cross into another segment (a write never straddles segment files).
fn push_chunk(
    chunks: &mut Vec<(u64, usize, usize)>,
    seg_len: u64,
    pos: u64,
    at: usize,
    len: usize,
) {
    if let Some(last) = chunks.last_mut() {
        if pos % seg_len != 0 && last.0 + last.2 as u64 == pos && last.1 + last.2 == at {
            last.2 += len;
            return;
        }
    }
    chunks.push((pos, at, len));
}
