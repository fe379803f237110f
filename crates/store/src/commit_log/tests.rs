use super::*;

fn config(dir: &Path, segment_len: u64) -> CommitLogConfig {
    CommitLogConfig {
        dir: dir.to_path_buf(),
        segment_len,
        index_slots_per_file: 8,
        max_body_len: 200,
        max_batch_bytes: 1 << 20,
        write_through_file: false,
        warm_ahead: false,
    }
}

fn accept_all(_: &EntryHeader, _: &[u8]) -> std::result::Result<(), InvalidBody> {
    Ok(())
}

fn open(dir: &Path, segment_len: u64) -> (CommitLog, LogRecovery) {
    CommitLog::open(config(dir, segment_len), &accept_all).unwrap()
}

fn body(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
}

fn append(log: &CommitLog, term: u64, bodies: &[Vec<u8>]) -> Appended {
    let mut batch = log.begin_append().unwrap();
    for b in bodies {
        batch
            .append_with(EntryKind::Normal, term, 0, b.len(), |_, out| {
                out.copy_from_slice(b);
                Ok(())
            })
            .unwrap();
    }
    batch.commit().unwrap()
}

#[test]
fn appends_roll_with_padding_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, rec) = open(dir.path(), 512);
    assert_eq!(rec.last_index, 0);
    let bodies: Vec<_> = (1..=10).map(|i| body(i, 100)).collect();
    let appended = append(&log, 1, &bodies);
    assert_eq!((appended.first_index, appended.last_index), (1, 10));
    // 148-byte frames: three per 512-byte segment, then padding.
    let loc4 = log.location(4).unwrap();
    assert_eq!(loc4.pos, 512);
    assert_eq!(log.write_pos(), 3 * 512 + 148);
    for i in 1..=10u64 {
        let entry = log.read_entry(i).unwrap().unwrap();
        assert_eq!(entry.index, i);
        assert_eq!(entry.body.as_ref(), &bodies[i as usize - 1][..]);
    }
    assert!(log.read_entry(11).unwrap().is_none());
    assert!(
        log.read_body_at(loc4.pos + 48).is_none(),
        "unstable bytes are not shared"
    );
    log.mark_stable(log.write_pos());
    let (header, shared) = log.read_body_at(loc4.pos + 48).unwrap();
    assert_eq!(header.index, 4);
    assert_eq!(shared.as_ref(), &bodies[3][..]);

    // Reopen: everything recovered, the next entry continues the chain.
    log.flush_and_checkpoint().unwrap();
    drop(log);
    let (log, rec) = open(dir.path(), 512);
    assert_eq!(rec.cut, None);
    assert_eq!(log.last_index(), 10);
    assert_eq!(log.last_term(), 1);
    append(&log, 2, &[body(11, 10)]);
    assert_eq!(log.read_entry(11).unwrap().unwrap().term, 2);
}

#[test]
fn follower_append_must_match_placement() {
    let dir = tempfile::tempdir().unwrap();
    let (leader, _) = open(&dir.path().join("a"), 512);
    let (follower, _) = open(&dir.path().join("b"), 512);
    append(
        &leader,
        1,
        &(1..=7)
            .map(|i| body(i, 100 + i as usize))
            .collect::<Vec<_>>(),
    );
    let mut batch = follower.begin_append().unwrap();
    for i in 1..=7 {
        batch
            .append_entry(&leader.read_entry(i).unwrap().unwrap())
            .unwrap();
    }
    batch.commit().unwrap();
    assert_eq!(follower.write_pos(), leader.write_pos());
    let mut wrong = leader.read_entry(7).unwrap().unwrap();
    wrong.index = 8;
    wrong.pos += 10;
    let mut batch = follower.begin_append().unwrap();
    assert!(matches!(
        batch.append_entry(&wrong),
        Err(StoreError::LogMismatch(_))
    ));
}

#[test]
fn frames_are_written_as_given_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (leader, _) = open(&dir.path().join("a"), 512);
    let bodies: Vec<_> = (1..=7).map(|i| body(i, 100 + i as usize)).collect();
    append(&leader, 1, &bodies);
    let frames = leader.read_frames(1, 100, 1 << 20).unwrap();
    {
        let (follower, _) = open(&dir.path().join("b"), 512);
        let mut batch = follower.begin_append().unwrap();
        for frame in &frames {
            let header = EntryHeader::decode(frame).unwrap();
            batch.append_frame(&header, frame).unwrap();
        }
        batch.commit().unwrap();
        assert_eq!(
            follower.write_pos(),
            leader.write_pos(),
            "padding as placed"
        );
        assert_eq!(follower.read_frames(1, 100, 1 << 20).unwrap(), frames);
        follower.flush_and_checkpoint().unwrap();
    }
    let (follower, rec) = open(&dir.path().join("b"), 512);
    assert_eq!((rec.last_index, rec.cut), (7, None));
    assert_eq!(
        follower.read_entry(7).unwrap().unwrap().body.as_ref(),
        &bodies[6][..]
    );

    // A frame out of place, of the wrong size or of an older term is refused.
    let (other, _) = open(&dir.path().join("c"), 512);
    let mut batch = other.begin_append().unwrap();
    let second = EntryHeader::decode(&frames[1]).unwrap();
    assert!(batch.append_frame(&second, &frames[1]).is_err());
    let first = EntryHeader::decode(&frames[0]).unwrap();
    assert!(batch.append_frame(&first, &frames[0][..40]).is_err());
    batch.append_frame(&first, &frames[0]).unwrap();
    let older = EntryHeader { term: 0, ..second };
    assert!(batch.append_frame(&older, &frames[1]).is_err());
}

#[test]
fn truncate_then_append_then_recover_keeps_only_new_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 512);
    append(&log, 1, &(1..=6).map(|i| body(i, 100)).collect::<Vec<_>>());
    log.flush_and_checkpoint().unwrap();
    log.mark_stable(log.location(2).unwrap().end());
    assert!(
        log.truncate_after(1).is_err(),
        "stable entries cannot be removed"
    );
    log.truncate_after(3).unwrap();
    assert_eq!(log.last_index(), 3);
    assert!(log.read_entry(4).unwrap().is_none());
    // A shorter entry 4 from a new term; the old 5 and 6 must never come back.
    append(&log, 2, &[body(40, 20)]);
    drop(log);
    let (log, rec) = open(dir.path(), 512);
    assert_eq!(rec.last_index, 4);
    assert_eq!(log.read_entry(4).unwrap().unwrap().term, 2);
    assert_eq!(log.term_at(3), Some(1));
}

#[test]
fn reset_starts_mid_segment_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 512);
    append(&log, 1, &[body(1, 50)]);
    log.reset(100, 5 * 512 + 200, 7).unwrap();
    assert_eq!(log.last_index(), 99);
    assert_eq!(log.term_at(99), Some(7));
    let appended = append(&log, 8, &[body(100, 200), body(101, 200)]);
    assert_eq!(appended.first_index, 100);
    assert_eq!(log.location(100).unwrap().pos, 5 * 512 + 200);
    assert_eq!(
        log.location(101).unwrap().pos,
        6 * 512,
        "second entry rolls"
    );
    drop(log);
    let (log, rec) = open(dir.path(), 512);
    assert_eq!(rec.cut, None);
    assert_eq!((log.first_index(), log.last_index()), (100, 101));
    assert_eq!(log.term_at(99), Some(7));
}

#[test]
fn durable_watch_tracks_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 4096);
    let rx = log.subscribe_durable();
    append(&log, 1, &[body(1, 10), body(2, 10)]);
    assert_eq!(rx.borrow().index, 0);
    let before = log.fsync_count();
    let durable = log.flush().unwrap();
    assert_eq!(durable.index, 2);
    assert_eq!(rx.borrow().index, 2);
    assert_eq!(log.fsync_count(), before + 1);
    log.flush().unwrap();
    assert_eq!(log.fsync_count(), before + 1, "nothing new, no fsync");
}

#[test]
fn oversized_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 4096);
    let mut batch = log.begin_append().unwrap();
    let err = batch.append_with(EntryKind::Normal, 1, 0, 201, |_, _| Ok(()));
    assert!(matches!(err, Err(StoreError::EntryTooLarge { .. })));
    assert!(CommitLog::open(config(dir.path(), 100), &accept_all).is_err());
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append { sizes: Vec<usize>, term_bump: u64 },
        Truncate { back: u64 },
        Reopen,
        Checkpoint,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (proptest::collection::vec(0usize..200, 1..6), 0u64..2)
                .prop_map(|(sizes, term_bump)| Op::Append { sizes, term_bump }),
            1 => (0u64..5).prop_map(|back| Op::Truncate { back }),
            1 => Just(Op::Reopen),
            1 => Just(Op::Checkpoint),
        ]
    }

    fn check_matches(log: &CommitLog, model: &[(u64, Vec<u8>)]) {
        assert_eq!(log.last_index(), model.len() as u64);
        for (i, (term, body)) in model.iter().enumerate() {
            let entry = log.read_entry(i as u64 + 1).unwrap().unwrap();
            assert_eq!(entry.term, *term);
            assert_eq!(entry.body.as_ref(), &body[..]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Appends, truncations and restarts keep the log equal to a simple model; then
        /// one flipped byte after the safe point cuts exactly from its frame on.
        #[test]
        fn log_matches_model_and_corruption_cuts_a_suffix(
            ops in proptest::collection::vec(op(), 1..24),
            flip in any::<prop::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path(), 1024);
            let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut term = 1u64;
            for op in ops {
                match op {
                    Op::Append { sizes, term_bump } => {
                        term += term_bump;
                        let bodies: Vec<Vec<u8>> = sizes
                            .iter()
                            .enumerate()
                            .map(|(k, &n)| body(model.len() as u64 + k as u64, n))
                            .collect();
                        append(&log, term, &bodies);
                        model.extend(bodies.into_iter().map(|b| (term, b)));
                    }
                    Op::Truncate { back } => {
                        let keep = (model.len() as u64).saturating_sub(back);
                        log.truncate_after(keep).unwrap();
                        model.truncate(keep as usize);
                    }
                    Op::Reopen => {
                        drop(log);
                        let (reopened, rec) = open(dir.path(), 1024);
                        prop_assert_eq!(rec.cut, None);
                        log = reopened;
                    }
                    Op::Checkpoint => {
                        log.flush_and_checkpoint().unwrap();
                    }
                }
                check_matches(&log, &model);
            }
            // Flip one byte somewhere in the frames after the safe point.
            let cp: LogCheckpoint = checkpoint::read(&dir.path().join(CHECKPOINT_FILE))
                .unwrap_or(LogCheckpoint::empty_at(1, 0, 0));
            let end = log.write_pos();
            let safe = cp.safe_pos.min(end);
            if end > safe {
                let at = safe + flip.index((end - safe) as usize) as u64;
                let victim = (1..=model.len() as u64)
                    .map(|i| log.location(i).unwrap())
                    .find(|loc| loc.pos <= at && at < loc.end());
                drop(log);
                let path = dir.path().join("data").join(crate::segment::file_name(at - at % 1024));
                let mut bytes = std::fs::read(&path).unwrap();
                bytes[(at % 1024) as usize] ^= 0x01;
                std::fs::write(&path, bytes).unwrap();
                let (log, _) = open(dir.path(), 1024);
                if let Some(victim) = victim {
                    // Everything before the damaged frame survives, nothing from it on.
                    prop_assert_eq!(log.last_index(), victim.index - 1);
                    check_matches(&log, &model[..victim.index as usize - 1]);
                } else {
                    // Padding was hit: a prefix survives, at least up to the padding.
                    let kept = log.last_index() as usize;
                    let before = model
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| {
                            let loc = log.location(*i as u64 + 1);
                            loc.is_some_and(|l| l.end() <= at)
                        })
                        .count();
                    prop_assert!(kept >= before);
                    check_matches(&log, &model[..kept]);
                }
            }
        }
    }
}

#[test]
fn recovery_fsyncs_what_an_earlier_process_left_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, _) = open(dir.path(), 512);
        let bodies: Vec<_> = (1..=10).map(|i| body(i, 100)).collect();
        append(&log, 1, &bodies);
        // Dropped without a flush: as after kill -9, the entries sit in the page cache.
    }
    let (log, rec) = open(dir.path(), 512);
    assert_eq!(rec.last_index, 10);
    assert!(
        log.fsync_count() >= 4,
        "the 4 segments written since the last checkpoint are fsynced before counting as durable (fsyncs: {})",
        log.fsync_count()
    );
    assert_eq!(log.durable().index, 10);
    log.flush_and_checkpoint().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), 512);
    assert!(
        log.fsync_count() <= 1,
        "after a clean close only the open segment is synced again (fsyncs: {})",
        log.fsync_count()
    );
}

#[test]
fn warming_a_reopened_log_leaves_its_entries_alone() {
    let dir = tempfile::tempdir().unwrap();
    let through_file = CommitLogConfig {
        write_through_file: true,
        warm_ahead: true,
        ..config(dir.path(), 1 << 20)
    };
    let bodies: Vec<_> = (1..=60).map(|i| body(i, 200)).collect();
    {
        let (log, _) = CommitLog::open(through_file.clone(), &accept_all).unwrap();
        append(&log, 1, &bodies);
        log.flush().unwrap();
    }
    let (log, _) = CommitLog::open(through_file, &accept_all).unwrap();
    // From the start of the segment: the entries this process did not write stay.
    assert_eq!(log.prefault(0, 1 << 20).unwrap(), 1 << 20);
    for (i, expected) in bodies.iter().enumerate() {
        let entry = log.read_entry(i as u64 + 1).unwrap().unwrap();
        assert_eq!(entry.body.as_ref(), &expected[..]);
    }
    let more: Vec<_> = (61..=70).map(|i| body(i, 200)).collect();
    append(&log, 1, &more);
    assert_eq!(log.last_index(), 70);
}

#[test]
fn prefaulting_stops_at_the_last_segment_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), 8192);
    let first: Vec<_> = (1..=60).map(|i| body(i, 200)).collect();
    append(&log, 1, &first);
    let end_of_segments = log.write_pos() - log.write_pos() % 8192 + 8192;
    // Over written bytes, the writer's position and beyond the last segment.
    assert_eq!(log.prefault(100, 1 << 20).unwrap(), end_of_segments);
    assert_eq!(
        log.prefault(end_of_segments, 1 << 20).unwrap(),
        end_of_segments
    );
    let second: Vec<_> = (61..=80).map(|i| body(i, 200)).collect();
    append(&log, 1, &second);
    for (i, expected) in first.iter().chain(&second).enumerate() {
        let entry = log.read_entry(i as u64 + 1).unwrap().unwrap();
        assert_eq!(entry.body.as_ref(), &expected[..]);
    }
    // What the log wrote reaches the disk through the range-limited flush.
    log.flush().unwrap();
    drop(log);
    let (log, recovery) = open(dir.path(), 8192);
    assert_eq!(recovery.last_index, 80);
    assert_eq!(
        log.read_entry(80).unwrap().unwrap().body.as_ref(),
        &second[19][..]
    );
}
