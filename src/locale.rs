//! The default Calendar folder's display name per mailbox language (reference/exchange.md §4),
//! embedded from `fixtures/locales.json`. The name is only a first guess that saves a round trip;
//! the scripts still find the default calendar by FolderType when the guess misses.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

static LOCALES_JSON: &str = include_str!("../fixtures/locales.json");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Variant {
    pub name: String,
    pub status: String,
    pub note: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Locale {
    pub code: String,
    pub language: String,
    pub calendar: String,
    /// `confirmed` (two or more independent sources) or `single-source`.
    pub status: String,
    pub sources: String,
    pub variants: Vec<Variant>,
}

#[derive(Deserialize)]
struct Table {
    locales: Vec<Locale>,
}

/// Every known locale, in the reference's order.
pub fn all() -> &'static [Locale] {
    static TABLE: OnceLock<Vec<Locale>> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str::<Table>(LOCALES_JSON)
            .expect("fixtures/locales.json is embedded at build time and checked by tests")
            .locales
    })
}

/// Finds a locale by code, case-insensitively; `de-DE` falls back to `de`.
pub fn find(code: &str) -> Option<&'static Locale> {
    let wanted = code.trim();
    all()
        .iter()
        .find(|l| l.code.eq_ignore_ascii_case(wanted))
        .or_else(|| {
            let primary = wanted.split(['-', '_']).next()?;
            all().iter().find(|l| l.code.eq_ignore_ascii_case(primary))
        })
}

/// The known codes nearest to an unknown one, for the error message.
pub fn nearest(code: &str, count: usize) -> Vec<&'static str> {
    let wanted = code.to_lowercase();
    let mut scored: Vec<(usize, &'static str)> = all()
        .iter()
        .map(|l| {
            (
                edit_distance(&wanted, &l.code.to_lowercase()),
                l.code.as_str(),
            )
        })
        .collect();
    scored.sort();
    scored.into_iter().take(count).map(|(_, c)| c).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_91_reference_locales() {
        assert_eq!(all().len(), 91);
        assert!(all().iter().all(|l| !l.calendar.is_empty()));
        assert!(
            all()
                .iter()
                .all(|l| l.status == "confirmed" || l.status == "single-source")
        );
    }

    #[test]
    fn known_names_and_variants() {
        assert_eq!(find("de").unwrap().calendar, "Kalender");
        assert_eq!(find("de-AT").unwrap().calendar, "Kalender");
        assert_eq!(find("JA").unwrap().calendar, "予定表");
        assert_eq!(find("pt-BR").unwrap().calendar, "Calendário");
        let nl = find("nl").unwrap();
        assert_eq!(nl.calendar, "Agenda");
        assert!(nl.variants.iter().any(|v| v.name == "Kalender"));
        assert!(find("xx").is_none());
    }

    #[test]
    fn nearest_codes_for_a_typo() {
        let near = nearest("dee", 3);
        assert!(near.contains(&"de"), "{near:?}");
    }
}
