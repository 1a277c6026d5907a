//! The promotion rule: which standby may be promoted without losing an
//! acknowledged commit, judged only from what the pool has seen.
//!
//! A commit is acknowledged once `k` of the standbys named in the primary's
//! `synchronous_standby_names` have flushed it, whether the method is
//! `ANY k` (quorum) or `FIRST k` (priority: the first `k` connected names
//! acknowledge, and they are all in the list too). So each acknowledged
//! commit is on at least `k` of the `N` listed standbys, and any `N - k + 1`
//! of them include at least one that has it. Once the pool has read the
//! final WAL position (its receiver has lost the primary) of that many
//! listed standbys on the lost primary's timeline, the most advanced of them
//! has every acknowledged commit, and it alone may be promoted. With fewer
//! in sight, nothing is provable and the pool does not promote.

/// `synchronous_standby_names`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncRule {
    /// Nothing waits for a standby: no commit is provably anywhere but on
    /// the primary.
    Async,
    /// `ANY k (…)`, `FIRST k (…)`, `k (…)` or a plain list (= `FIRST 1`).
    /// `names` is `None` for `*` (any standby at all).
    Standbys {
        quorum: bool,
        k: usize,
        names: Option<Vec<String>>,
    },
}

impl SyncRule {
    pub fn parse(setting: &str) -> Result<SyncRule, String> {
        let text = setting.trim();
        if text.is_empty() {
            return Ok(SyncRule::Async);
        }
        let (quorum, rest) = match first_word(text) {
            Some((word, rest)) if word.eq_ignore_ascii_case("any") => (true, rest),
            Some((word, rest)) if word.eq_ignore_ascii_case("first") => (false, rest),
            _ => (false, text),
        };
        let rest = rest.trim_start();
        let (k, list) = match rest.find('(') {
            Some(open)
                if rest[..open].trim().chars().all(|c| c.is_ascii_digit())
                    && !rest[..open].trim().is_empty() =>
            {
                let k: usize = rest[..open]
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad count in {setting:?}"))?;
                let close = rest
                    .rfind(')')
                    .ok_or_else(|| format!("unclosed list in {setting:?}"))?;
                (k, &rest[open + 1..close])
            }
            _ if text.len() != rest.len() => {
                return Err(format!("ANY/FIRST without a count in {setting:?}"))
            }
            _ => (1, rest),
        };
        let names: Vec<String> = list
            .split(',')
            .map(|n| n.trim().trim_matches('"').to_string())
            .filter(|n| !n.is_empty())
            .collect();
        if names.is_empty() || k == 0 {
            return Err(format!("no standby named in {setting:?}"));
        }
        let names = (!names.iter().any(|n| n == "*")).then_some(names);
        Ok(SyncRule::Standbys { quorum, k, names })
    }

    /// The same method and count over another list of standbys: what a
    /// newly promoted primary gets, so that `N` stays known after it.
    pub fn render_for(&self, standbys: &[String]) -> String {
        let quoted: Vec<String> = standbys.iter().map(|s| format!("\"{s}\"")).collect();
        let (quorum, k) = match self {
            SyncRule::Async => (true, 1),
            SyncRule::Standbys { quorum, k, .. } => (*quorum, *k),
        };
        let k = k.min(quoted.len().max(1));
        format!(
            "{} {k} ({})",
            if quorum { "ANY" } else { "FIRST" },
            quoted.join(", ")
        )
    }
}

fn first_word(text: &str) -> Option<(&str, &str)> {
    let end = text.find(|c: char| !c.is_ascii_alphabetic())?;
    Some((&text[..end], &text[end..]))
}

/// One standby that could hold acknowledged commits, as the pool saw it.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// The node's index in the pool, if the pool knows a node by that name.
    pub node: Option<usize>,
    /// Its final WAL position, read after its receiver lost the primary, on
    /// the lost primary's timeline; `None` while that is not known.
    pub final_lsn: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `node` is provably up to date.
    Promote { node: usize },
    /// Too few standbys in sight: `unseen` may hold acknowledged commits.
    Blocked {
        seen: usize,
        needed: usize,
        unseen: Vec<String>,
    },
}

/// How many of `members` must be seen for the most advanced to be proven.
pub fn needed(rule: &SyncRule, members: usize) -> usize {
    match rule {
        // Nothing was acknowledged by a standby: the best the pool can do is
        // see every standby that was streaming.
        SyncRule::Async => members,
        SyncRule::Standbys { k, .. } => (members + 1).saturating_sub(*k).clamp(1, members.max(1)),
    }
}

/// The rule itself: with at least `needed` members seen, the most advanced
/// seen member; otherwise blocked, naming the members out of sight.
pub fn decide(rule: &SyncRule, members: &[Member]) -> Verdict {
    let needed = needed(rule, members.len());
    let seen: Vec<&Member> = members
        .iter()
        .filter(|m| m.final_lsn.is_some() && m.node.is_some())
        .collect();
    let unseen: Vec<String> = members
        .iter()
        .filter(|m| m.final_lsn.is_none() || m.node.is_none())
        .map(|m| m.name.clone())
        .collect();
    if seen.len() < needed || seen.is_empty() {
        return Verdict::Blocked {
            seen: seen.len(),
            needed,
            unseen,
        };
    }
    // Ties go to the member that comes first in `members` (the caller passes them sorted by name):
    // the choice is the same every time, and either of two equal members holds every acknowledged commit.
    let best = seen
        .iter()
        .enumerate()
        .max_by_key(|(listed, m)| (m.final_lsn, std::cmp::Reverse(*listed)))
        .map(|(_, m)| m)
        .expect("seen is not empty");
    Verdict::Promote {
        node: best.node.expect("seen members are pool nodes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, node: usize, lsn: Option<u64>) -> Member {
        Member {
            name: name.into(),
            node: Some(node),
            final_lsn: lsn,
        }
    }

    #[test]
    fn parses_every_form() {
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(SyncRule::parse("").unwrap(), SyncRule::Async);
        assert_eq!(
            SyncRule::parse("ANY 1 (\"replica1\", \"replica2\")").unwrap(),
            SyncRule::Standbys {
                quorum: true,
                k: 1,
                names: names(&["replica1", "replica2"])
            }
        );
        assert_eq!(
            SyncRule::parse("first 2 (a,b,c)").unwrap(),
            SyncRule::Standbys {
                quorum: false,
                k: 2,
                names: names(&["a", "b", "c"])
            }
        );
        assert_eq!(
            SyncRule::parse("2 (a, b)").unwrap(),
            SyncRule::Standbys {
                quorum: false,
                k: 2,
                names: names(&["a", "b"])
            }
        );
        assert_eq!(
            SyncRule::parse("\"replica1\"").unwrap(),
            SyncRule::Standbys {
                quorum: false,
                k: 1,
                names: names(&["replica1"])
            }
        );
        assert_eq!(
            SyncRule::parse("a, b").unwrap(),
            SyncRule::Standbys {
                quorum: false,
                k: 1,
                names: names(&["a", "b"])
            }
        );
        assert_eq!(
            SyncRule::parse("ANY 1 (*)").unwrap(),
            SyncRule::Standbys {
                quorum: true,
                k: 1,
                names: None
            }
        );
        assert!(SyncRule::parse("ANY (a)").is_err());
        assert!(SyncRule::parse("ANY 0 (a)").is_err());
    }

    #[test]
    fn renders_the_same_rule_for_new_standbys() {
        let rule = SyncRule::parse("ANY 2 (r1, r2, r3)").unwrap();
        assert_eq!(
            rule.render_for(&["r2".into(), "r3".into(), "primary".into()]),
            "ANY 2 (\"r2\", \"r3\", \"primary\")"
        );
        assert_eq!(SyncRule::Async.render_for(&["a".into()]), "ANY 1 (\"a\")");
        let first = SyncRule::parse("FIRST 2 (a, b)").unwrap();
        assert_eq!(first.render_for(&["a".into()]), "FIRST 1 (\"a\")");
    }

    #[test]
    fn any_one_of_two_needs_both() {
        let rule = SyncRule::parse("ANY 1 (r1, r2)").unwrap();
        let blocked = decide(&rule, &[member("r1", 1, None), member("r2", 2, Some(100))]);
        assert_eq!(
            blocked,
            Verdict::Blocked {
                seen: 1,
                needed: 2,
                unseen: vec!["r1".into()]
            }
        );
        assert_eq!(
            decide(
                &rule,
                &[member("r1", 1, Some(300)), member("r2", 2, Some(100))]
            ),
            Verdict::Promote { node: 1 }
        );
    }

    #[test]
    fn a_tie_goes_to_the_member_that_comes_first() {
        let rule = SyncRule::parse("ANY 1 (r1, r2)").unwrap();
        let tied = [member("r1", 1, Some(300)), member("r2", 2, Some(300))];
        assert_eq!(decide(&rule, &tied), Verdict::Promote { node: 1 });
        let reversed = [member("r2", 2, Some(300)), member("r1", 1, Some(300))];
        assert_eq!(decide(&rule, &reversed), Verdict::Promote { node: 2 });
    }

    #[test]
    fn any_two_of_three_tolerates_one_out_of_sight() {
        let rule = SyncRule::parse("ANY 2 (r1, r2, r3)").unwrap();
        let members = [
            member("r1", 1, None),
            member("r2", 2, Some(100)),
            member("r3", 3, Some(90)),
        ];
        assert_eq!(decide(&rule, &members), Verdict::Promote { node: 2 });
        let two_gone = [
            member("r1", 1, None),
            member("r2", 2, None),
            member("r3", 3, Some(90)),
        ];
        assert!(matches!(
            decide(&rule, &two_gone),
            Verdict::Blocked { needed: 2, .. }
        ));
    }

    #[test]
    fn a_standby_the_pool_does_not_know_counts_as_unseen() {
        let rule = SyncRule::parse("ANY 1 (r1, elsewhere)").unwrap();
        let members = [
            member("r1", 1, Some(5)),
            Member {
                name: "elsewhere".into(),
                node: None,
                final_lsn: Some(9),
            },
        ];
        assert_eq!(
            decide(&rule, &members),
            Verdict::Blocked {
                seen: 1,
                needed: 2,
                unseen: vec!["elsewhere".into()]
            }
        );
    }

    #[test]
    fn first_k_counts_the_same_way() {
        // FIRST 1 (a, b): b becomes synchronous when a disconnects, so both
        // could hold a commit the other lacks.
        let rule = SyncRule::parse("FIRST 1 (a, b)").unwrap();
        assert!(matches!(
            decide(&rule, &[member("a", 1, Some(10)), member("b", 2, None)]),
            Verdict::Blocked { .. }
        ));
        assert_eq!(
            decide(&rule, &[member("a", 1, Some(10)), member("b", 2, Some(20))]),
            Verdict::Promote { node: 2 }
        );
    }
}
