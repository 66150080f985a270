//! `map init`'s guesses: a first mapping for another system's export, from its headers and
//! what its values look like.
//!
//! Each source column is matched to a plbulk column by, in order of trust: its header being
//! the column's own or one of its aliases (the schema's), a usual header of billing and
//! telephony exports ("Account Name", "Term", "DDI", "Handset"), a near spelling, and what
//! its values look like (email addresses, UK numbers, postcodes, MAC addresses, full names,
//! which become a First Name and Last Name split). Without a kind, the kind whose columns the
//! export fills best is taken. Every choice column gets a `[values]` table of the export's
//! own values, each with its guess or "" for a person to fill in. What could not be guessed is
//! said: a column left under `ignore`, a required column not found, a value not guessed.

use std::path::PathBuf;
use std::sync::Arc;

use super::mapping::{Mapping, Part, Source};
use super::{IntakeError, RowBuf};
use crate::schema::{squash, Field, Kind, Need};
use crate::validate::fields;

/// Distinct values kept per column: a choice column has a few; a column of emails is not one.
const DISTINCT: usize = 100;
/// Rows looked at per file: enough to tell what a column holds.
const SAMPLE: usize = 20_000;

/// One column of the export(s), as read.
#[derive(Debug, Clone, Default)]
pub struct SourceColumn {
    pub header: String,
    /// Distinct non-blank values (trimmed), in the order first seen, up to `DISTINCT` (a hundred).
    pub values: Vec<String>,
    /// Whether there were more distinct values than were kept.
    pub more: bool,
    filled: u64,
    looks: [u64; LOOKS],
}

/// What a value may look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    Email,
    UkNumber,
    Postcode,
    Mac,
    FullName,
}

const LOOKS: usize = 5;

impl Look {
    const ALL: [Look; LOOKS] = [
        Look::Email,
        Look::UkNumber,
        Look::Postcode,
        Look::Mac,
        Look::FullName,
    ];

    fn words(self) -> &'static str {
        match self {
            Look::Email => "its values are email addresses",
            Look::UkNumber => "its values are UK phone numbers",
            Look::Postcode => "its values are postcodes",
            Look::Mac => "its values are MAC addresses",
            Look::FullName => "its values are full names",
        }
    }

    fn fits(self, v: &str, scratch: &mut String) -> bool {
        match self {
            Look::Email => fields::email(v).is_ok(),
            Look::UkNumber => {
                v.chars().filter(char::is_ascii_digit).count() >= 9
                    && fields::uk_number(v, scratch).is_ok()
            }
            Look::Postcode => {
                v.chars().any(|c| c.is_ascii_alphabetic())
                    && v.chars().any(|c| c.is_ascii_digit())
                    && fields::postcode(v, scratch).is_ok()
            }
            Look::Mac => {
                fields::mac(v, scratch).is_ok()
                    && (v.contains([':', '-', '.'])
                        || scratch.chars().any(|c| c.is_ascii_alphabetic()))
            }
            Look::FullName => looks_like_a_name(v),
        }
    }
}

/// "Jordan Lee", "Lee, Jordan", "Mary-Ann O'Neill": two to four words of letters, and not a
/// company's name.
fn looks_like_a_name(v: &str) -> bool {
    const COMPANY: &[&str] = &[
        "ltd",
        "limited",
        "llp",
        "plc",
        "inc",
        "co",
        "group",
        "services",
        "solutions",
        "&",
        "and",
        "the",
        "partners",
        "associates",
        "trust",
        "council",
        "school",
        "clinic",
    ];
    let words: Vec<&str> = v
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    (2..=4).contains(&words.len())
        && v.matches(',').count() <= 1
        && words.iter().all(|w| {
            w.chars()
                .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '.'))
                && w.chars().next().is_some_and(char::is_uppercase)
                && !COMPANY
                    .iter()
                    .any(|c| w.trim_end_matches('.').eq_ignore_ascii_case(c))
        })
}

impl SourceColumn {
    fn add(&mut self, v: &str, scratch: &mut String) {
        let v = v.trim();
        if v.is_empty() {
            return;
        }
        self.filled += 1;
        for (i, look) in Look::ALL.iter().enumerate() {
            if look.fits(v, scratch) {
                self.looks[i] += 1;
            }
        }
        if !self.values.iter().any(|x| x.eq_ignore_ascii_case(v)) {
            if self.values.len() < DISTINCT {
                self.values.push(v.to_string());
            } else {
                self.more = true;
            }
        }
    }

    /// What most of its values look like, if anything.
    fn look(&self) -> Option<Look> {
        if self.filled == 0 {
            return None;
        }
        Look::ALL
            .iter()
            .zip(self.looks)
            .filter(|(_, n)| *n * 10 >= self.filled * 8)
            .max_by_key(|(_, n)| *n)
            .map(|(l, _)| *l)
    }
}

/// `plbulk map init`'s work, for the verb and the page alike: the export(s) read, the mapping
/// guessed, and its text (`names`: the exports as its opening comment names them).
pub fn init(
    files: &[PathBuf],
    names: &[String],
    sheet: Option<&str>,
    kind: Option<Kind>,
) -> Result<(Guess, String), IntakeError> {
    let columns = read(files, sheet)?;
    let guess = guess(&columns, kind);
    let text = guess.to_toml(names, sheet);
    Ok((guess, text))
}

/// Reads the export(s): every column's header, distinct values and what they look like.
/// Files with the same columns add up; a column only one file has is kept too.
pub fn read(files: &[PathBuf], sheet: Option<&str>) -> Result<Vec<SourceColumn>, IntakeError> {
    let probe = Arc::new(Mapping::probe(sheet.map(str::to_string)));
    let mut out: Vec<SourceColumn> = Vec::new();
    let mut scratch = String::new();
    for f in files {
        let (sheets, _) = super::open_mapped(f, None, Some(&probe))?;
        for mut s in sheets {
            let width = s
                .mapped
                .as_ref()
                .map_or(s.headers.len(), |m| m.source_width());
            let at: Vec<usize> = s.headers[..width]
                .iter()
                .map(|h| {
                    match out
                        .iter()
                        .position(|c| c.header.eq_ignore_ascii_case(h.trim()))
                    {
                        Some(i) => i,
                        None => {
                            out.push(SourceColumn {
                                header: h.trim().to_string(),
                                ..Default::default()
                            });
                            out.len() - 1
                        }
                    }
                })
                .collect();
            let mut row = RowBuf::default();
            let mut notes = Vec::new();
            let mut n = 0;
            while n < SAMPLE && s.rows.next_row(&mut row, &mut notes)?.is_some() {
                notes.clear();
                n += 1;
                for (c, &i) in at.iter().enumerate() {
                    out[i].add(row.get(c), &mut scratch);
                }
            }
        }
    }
    out.retain(|c| !c.header.is_empty());
    Ok(out)
}

/// Usual headers of billing and telephony exports that are not plbulk's own aliases: guessed
/// on, but not read as such without a mapping.
const USUAL: &[(Field, &[&str])] = &[
    (
        Field::Ref,
        &[
            "Account No",
            "Account Number",
            "Account Ref",
            "Customer No",
            "Customer Number",
            "Account ID",
        ],
    ),
    (
        Field::CompanyName,
        &[
            "Account Name",
            "Account",
            "Client",
            "Client Name",
            "Site Name",
            "Trading Name",
        ],
    ),
    (
        Field::Customer,
        &[
            "Account Name",
            "Account",
            "Client",
            "Client Name",
            "Site",
            "Site Name",
            "Company",
        ],
    ),
    (
        Field::ContactName,
        &[
            "Contact Person",
            "Account Contact",
            "Primary Contact",
            "Contact Full Name",
        ],
    ),
    (
        Field::Email,
        &["Contact Email", "Billing Email", "Email Address", "Mail"],
    ),
    (
        Field::UserEmail,
        &["Email Address", "User Email Address", "Mail"],
    ),
    (
        Field::Phone,
        &[
            "Main Number",
            "Phone No",
            "Tel No",
            "Telephone Number",
            "Contact Phone",
        ],
    ),
    (
        Field::Number,
        &[
            "DID",
            "DDI Number",
            "Direct Dial",
            "Direct Line",
            "Phone Number",
            "Number",
        ],
    ),
    (
        Field::Plan,
        &[
            "Tariff",
            "Plan Name",
            "Service Plan",
            "Bundle",
            "Package Name",
        ],
    ),
    (
        Field::ContractMonths,
        &[
            "Term",
            "Term Months",
            "Contract Term",
            "Minimum Term",
            "Contract Length Months",
        ],
    ),
    (
        Field::Line1,
        &[
            "Street Address",
            "Address1",
            "Address Line1",
            "Billing Address",
        ],
    ),
    (Field::Line2, &["Address2", "Address Line2"]),
    (
        Field::Product,
        &[
            "Handset",
            "Handset Model",
            "Device Model",
            "Phone Model",
            "Device",
            "Phone Type",
        ],
    ),
    (Field::Mac, &["MAC", "MAC Address", "Device MAC"]),
    (
        Field::UserType,
        &[
            "Role",
            "User Role",
            "Access Level",
            "Permission",
            "User Type",
            "Licence Type",
        ],
    ),
    (Field::Quantity, &["Qty", "Quantity", "Units"]),
];

/// A plbulk column guessed for a source column, with why.
#[derive(Debug, Clone)]
pub struct Guessed {
    pub field: Field,
    pub source: Source,
    pub why: String,
    score: u32,
}

/// A choice column's values: each source value and its guess ("" not guessed).
#[derive(Debug, Clone)]
pub struct Table {
    pub field: Field,
    pub entries: Vec<(String, String)>,
    /// More values than were listed.
    pub more: bool,
}

/// A first mapping.
#[derive(Debug, Clone)]
pub struct Guess {
    pub kind: Kind,
    /// The kind was inferred, not given.
    pub kind_guessed: bool,
    pub columns: Vec<Guessed>,
    pub tables: Vec<Table>,
    /// Source columns left out, each with why.
    pub ignored: Vec<(String, String)>,
    /// Required plbulk columns no source column was found for.
    pub missing: Vec<Field>,
}

/// The plbulk columns a source column might be, best first, for a sheet of `kind`.
fn candidates(kind: Kind, c: &SourceColumn) -> Vec<(Vec<Field>, u32, String)> {
    let mut out = Vec::new();
    let h = squash(&c.header);
    if let Some(col) = kind.match_header(&c.header) {
        let exact = squash(col.header) == h;
        out.push((
            vec![col.field],
            if exact { 10 } else { 9 },
            if exact {
                "its header".to_string()
            } else {
                format!("a usual header for {}", col.header)
            },
        ));
    }
    for (f, names) in USUAL {
        if let Some(col) = kind.column(*f) {
            if names.iter().any(|n| squash(n) == h) {
                out.push((vec![*f], 8, format!("a usual header for {}", col.header)));
            }
        }
    }
    if !h.is_empty() {
        for col in kind.columns() {
            let names = std::iter::once(col.header)
                .chain(col.aliases.iter().copied())
                .chain(
                    USUAL
                        .iter()
                        .filter(|(f, _)| *f == col.field)
                        .flat_map(|(_, n)| n.iter().copied()),
                );
            let mut best: Option<(u32, String)> = None;
            for n in names {
                let s = squash(n);
                let (score, why) = if strsim::normalized_damerau_levenshtein(&h, &s) >= 0.75 {
                    (6, format!("its header is spelt like {n:?}"))
                } else if s.len() >= 4 && h.contains(&s) {
                    (5, format!("its header has {n:?} in it"))
                } else {
                    continue;
                };
                if best.as_ref().is_none_or(|(b, _)| score > *b) {
                    best = Some((score, why));
                }
            }
            if let Some((score, why)) = best {
                out.push((vec![col.field], score, why));
            }
        }
    }
    if let Some(look) = c.look() {
        let fits: &[&[Field]] = match look {
            Look::Email => &[&[Field::Email], &[Field::UserEmail]],
            Look::UkNumber => &[&[Field::Number], &[Field::Phone], &[Field::Redirect]],
            Look::Postcode => &[&[Field::Postcode], &[Field::DeliveryPostcode]],
            Look::Mac => &[&[Field::Mac]],
            Look::FullName => &[&[Field::FirstName, Field::LastName], &[Field::ContactName]],
        };
        if let Some(fs) = fits
            .iter()
            .find(|fs| fs.iter().all(|f| kind.column(*f).is_some()))
        {
            out.push((fs.to_vec(), 4, look.words().to_string()));
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.1));
    out
}

/// The best assignment of source columns to a kind's columns, and its score.
fn assign(kind: Kind, columns: &[SourceColumn]) -> (Guess, i64) {
    let mut all: Vec<(usize, Vec<Field>, u32, String)> = columns
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            candidates(kind, c)
                .into_iter()
                .map(move |(fs, s, why)| (i, fs, s, why))
        })
        .collect();
    // Surest first; among equals, the export's order.
    all.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut taken = vec![false; columns.len()];
    let mut guessed: Vec<(usize, Guessed)> = Vec::new();
    for (i, fs, score, why) in all {
        if taken[i]
            || fs
                .iter()
                .any(|f| guessed.iter().any(|(_, g)| g.field == *f))
        {
            continue;
        }
        taken[i] = true;
        let header = columns[i].header.clone();
        if let [first, last] = fs[..] {
            for (f, part) in [(first, Part::First), (last, Part::Last)] {
                guessed.push((
                    i,
                    Guessed {
                        field: f,
                        source: Source::Part {
                            from: header.clone(),
                            part,
                        },
                        why: why.clone(),
                        score,
                    },
                ));
            }
        } else {
            guessed.push((
                i,
                Guessed {
                    field: fs[0],
                    source: Source::Column(header),
                    why,
                    score,
                },
            ));
        }
    }
    let missing: Vec<Field> = kind
        .columns()
        .iter()
        .filter(|c| c.need == Need::Required && !guessed.iter().any(|(_, g)| g.field == c.field))
        .map(|c| c.field)
        .collect();
    let score =
        guessed.iter().map(|(_, g)| i64::from(g.score)).sum::<i64>() - 15 * missing.len() as i64;
    let ignored = columns
        .iter()
        .enumerate()
        .filter(|(i, _)| !taken[*i])
        .map(|(_, c)| {
            (
                c.header.clone(),
                "no plbulk column looked like it".to_string(),
            )
        })
        .collect();
    let tables = guessed
        .iter()
        .filter(|(_, g)| is_choice(kind, g.field) && !matches!(g.source, Source::Part { .. }))
        .map(|(i, g)| Table {
            field: g.field,
            entries: columns[*i]
                .values
                .iter()
                .map(|v| (v.clone(), guess_value(kind, g.field, v)))
                .collect(),
            more: columns[*i].more,
        })
        .collect();
    let mut columns_out: Vec<Guessed> = guessed.into_iter().map(|(_, g)| g).collect();
    // In the order of the kind's own columns, as its template has them.
    columns_out.sort_by_key(|g| kind.columns().iter().position(|c| c.field == g.field));
    (
        Guess {
            kind,
            kind_guessed: false,
            columns: columns_out,
            tables,
            ignored,
            missing,
        },
        score,
    )
}

/// A column whose values come from a list: a `[values]` table translates the export's.
fn is_choice(kind: Kind, f: Field) -> bool {
    f == Field::Product || kind.column(f).is_some_and(|c| !c.values.is_empty())
}

/// How a choice column's export values are read to guess a plbulk value. A choice column
/// with no rule here is guessed only where the export already writes plbulk's own value.
#[derive(Debug, Clone, Copy)]
enum ValueRule {
    /// A plbulk value for a value holding one of its words, the first that fits.
    Words(&'static [(&'static str, &'static [&'static str])]),
    /// A contract length: "24 months", "2 years", "Rolling".
    Months,
    /// Inbound, outbound or both, in the spellings validation takes.
    Direction,
    /// Yes or no, in the spellings validation takes.
    YesNo,
}

/// Each choice column's rule, one place for what `map init` knows of other systems' words.
const VALUE_RULES: &[(Field, ValueRule)] = &[
    (
        Field::Plan,
        ValueRule::Words(&[
            (
                "hardware",
                &[
                    "hardware", "handset", "handsets", "device", "devices", "kit",
                ],
            ),
            (
                "pro",
                &[
                    "standard",
                    "pro",
                    "professional",
                    "user",
                    "seat",
                    "unlimited",
                ],
            ),
        ]),
    ),
    (Field::ContractMonths, ValueRule::Months),
    (
        Field::UserType,
        ValueRule::Words(&[
            (
                "admin",
                &["admin", "administrator", "manager", "owner", "supervisor"],
            ),
            (
                "standard",
                &[
                    "user", "standard", "basic", "staff", "member", "agent", "employee",
                ],
            ),
        ]),
    ),
    (Field::Direction, ValueRule::Direction),
    (Field::RejectAnonymous, ValueRule::YesNo),
    (Field::CallWaiting, ValueRule::YesNo),
    (Field::Voicemail, ValueRule::YesNo),
];

/// The plbulk value a source value of a choice column probably means; "" when not known.
pub fn guess_value(kind: Kind, f: Field, v: &str) -> String {
    let l = v.trim().to_lowercase();
    let allowed = kind.column(f).map_or(&[][..], |c| c.values);
    if let Some(a) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&l)) {
        return a.to_string();
    }
    let Some((_, rule)) = VALUE_RULES.iter().find(|(g, _)| *g == f) else {
        return String::new();
    };
    let out = match rule {
        ValueRule::Words(table) => table
            .iter()
            .find(|(_, words)| {
                l.split(|c: char| !c.is_alphanumeric())
                    .any(|x| words.contains(&x))
            })
            .map_or("", |(to, _)| to),
        ValueRule::Months => return months(&l).map_or(String::new(), |m| m.to_string()),
        ValueRule::Direction => fields::direction(&l).map_or("", |d| d.as_str()),
        ValueRule::YesNo => match fields::yes_no(&l) {
            Ok(Some(true)) => "yes",
            Ok(Some(false)) => "no",
            Ok(None) | Err(_) => "",
        },
    };
    out.to_string()
}

/// A contract length in months from "12", "12 months", "2 years", "1yr", "monthly", "rolling".
fn months(l: &str) -> Option<u32> {
    if let Ok(m) = fields::contract_months(l) {
        return Some(m);
    }
    if ["monthly", "rolling", "month to month", "30 days", "none"].contains(&l) {
        return Some(1);
    }
    let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
    let n: u32 = digits.parse().ok()?;
    let unit = l[digits.len()..].trim();
    let m = if unit.starts_with('y') {
        n * 12
    } else if unit.starts_with('m') || unit.is_empty() {
        n
    } else {
        return None;
    };
    [1, 12, 24, 36].contains(&m).then_some(m)
}

/// Guesses a mapping for the export's columns: for `kind`, or for the kind they fill best.
pub fn guess(columns: &[SourceColumn], kind: Option<Kind>) -> Guess {
    if let Some(k) = kind {
        return assign(k, columns).0;
    }
    let mut best: Option<(Guess, i64)> = None;
    for k in Kind::ALL {
        let (g, score) = assign(k, columns);
        let fields: Vec<Field> = g.columns.iter().map(|c| c.field).collect();
        if k == Kind::Migration && !crate::schema::is_one_person_a_row(&fields) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, s)| score > *s) {
            best = Some((g, score));
        }
    }
    let mut g = best.expect("there are kinds").0;
    g.kind_guessed = true;
    g
}

/// `s` as a TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Guess {
    fn header(&self, f: Field) -> &'static str {
        self.kind.column(f).map_or("", |c| c.header)
    }

    /// The mapping file, with a comment on each guess. `files` are the exports it was made
    /// from.
    pub fn to_toml(&self, files: &[String], sheet: Option<&str>) -> String {
        let mut t = String::new();
        t.push_str(&format!(
            "# A first mapping, written by plbulk map init from {}.\n\
             # Every line is a guess from the export's headers and values: check each one.\n\
             # [columns]: \"plbulk column\" = \"column in the export\". A plbulk column not listed is read\n\
             # from an export column of its own name. [values.\"…\"]: \"value in the export\" = \"plbulk value\";\n\
             # \"\" is not filled in yet, and the export's value is used as it is.\n\
             # Then: plbulk validate EXPORT --map THIS-FILE\n\n",
            files.join(", ")
        ));
        t.push_str(&format!("kind = {}", toml_str(self.kind.cli_name())));
        if self.kind_guessed {
            t.push_str("  # guessed from the columns: customers, users, numbers, devices, …");
        }
        t.push('\n');
        if let Some(s) = sheet {
            t.push_str(&format!("sheet = {}\n", toml_str(s)));
        }
        if self.ignored.is_empty() {
            t.push_str("ignore = []\n");
        } else {
            t.push_str("ignore = [\n");
            for (h, why) in &self.ignored {
                t.push_str(&format!(
                    "    {},  # {why}: map it under [columns], or leave it out\n",
                    toml_str(h)
                ));
            }
            t.push_str("]\n");
        }
        t.push_str("\n[columns]\n");
        for g in &self.columns {
            let value = match &g.source {
                Source::Column(c) => toml_str(c),
                Source::Part { from, part } => format!(
                    "{{ from = {}, part = {} }}",
                    toml_str(from),
                    toml_str(match part {
                        Part::First => "first",
                        Part::Last => "last",
                    })
                ),
                Source::Constant(v) => format!("{{ value = {} }}", toml_str(v)),
            };
            t.push_str(&format!(
                "{} = {value}  # {}\n",
                toml_str(self.header(g.field)),
                g.why
            ));
        }
        for f in &self.missing {
            t.push_str(&format!(
                "# {} = \"\"  # required, and no column looked like it: give the export's column\n",
                toml_str(self.header(*f))
            ));
        }
        for table in &self.tables {
            let choices = self
                .kind
                .column(table.field)
                .map(|c| c.values.join(", "))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "a product id, or brand and model as in the catalogue".into());
            t.push_str(&format!(
                "\n[values.{}]  # {}: {choices}\n",
                toml_str(self.header(table.field)),
                self.header(table.field)
            ));
            for (from, to) in &table.entries {
                t.push_str(&format!("{} = {}", toml_str(from), toml_str(to)));
                if to.is_empty() {
                    t.push_str("  # fill in");
                }
                t.push('\n');
            }
            if table.more {
                t.push_str(&format!(
                    "# … and more values than the {DISTINCT} listed: add those that need translating\n"
                ));
            }
        }
        t
    }

    /// What a person must look at, one line each: columns not guessed, required columns not
    /// found, values not guessed.
    pub fn not_guessed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (h, why) in &self.ignored {
            out.push(format!("column {h:?}: {why} (left under ignore)"));
        }
        for f in &self.missing {
            out.push(format!(
                "{}: required, and no column of the export looked like it",
                self.header(*f)
            ));
        }
        for table in &self.tables {
            let open: Vec<String> = table
                .entries
                .iter()
                .filter(|(_, to)| to.is_empty())
                .map(|(from, _)| format!("{from:?}"))
                .collect();
            if !open.is_empty() {
                out.push(format!(
                    "[values.{:?}]: {} to fill in",
                    self.header(table.field),
                    open.join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(header: &str, values: &[&str]) -> SourceColumn {
        let mut c = SourceColumn {
            header: header.into(),
            ..Default::default()
        };
        let mut s = String::new();
        for v in values {
            c.add(v, &mut s);
        }
        c
    }

    fn field_of(g: &Guess, f: Field) -> Option<&Source> {
        g.columns.iter().find(|c| c.field == f).map(|c| &c.source)
    }

    #[test]
    fn a_users_export_is_guessed_with_its_names_split() {
        let cols = vec![
            col("Account Name", &["Acme Ltd", "Bolt Ltd"]),
            col("Name", &["Lee, Jordan", "Jordan Lee", "Sam Patel"]),
            col("Extension", &["201", "202"]),
            col("Mail", &["a@acme.example", "b@bolt.example"]),
            col("Role", &["Administrator", "User", "Gold"]),
        ];
        let g = guess(&cols, None);
        assert_eq!(g.kind, Kind::Users);
        assert_eq!(
            field_of(&g, Field::Customer),
            Some(&Source::Column("Account Name".into()))
        );
        assert_eq!(
            field_of(&g, Field::FirstName),
            Some(&Source::Part {
                from: "Name".into(),
                part: Part::First
            })
        );
        assert_eq!(
            field_of(&g, Field::Email),
            Some(&Source::Column("Mail".into()))
        );
        assert_eq!(
            g.ignored
                .iter()
                .map(|(h, _)| h.as_str())
                .collect::<Vec<_>>(),
            ["Extension"]
        );
        let types = &g
            .tables
            .iter()
            .find(|t| t.field == Field::UserType)
            .unwrap()
            .entries;
        assert_eq!(
            types,
            &[
                ("Administrator".to_string(), "admin".to_string()),
                ("User".into(), "standard".into()),
                ("Gold".into(), "".into())
            ]
        );
        // What it writes is a mapping plbulk reads, with the same guesses.
        let text = g.to_toml(&["u.csv".into()], None);
        let m = Mapping::parse("m.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(m.kind, Kind::Users);
    }

    #[test]
    fn values_of_choice_columns_are_guessed() {
        let k = Kind::Customers;
        assert_eq!(guess_value(k, Field::Plan, "PL Standard"), "pro");
        assert_eq!(guess_value(k, Field::Plan, "Handset Only"), "hardware");
        assert_eq!(guess_value(k, Field::Plan, "Gold"), "");
        assert_eq!(guess_value(k, Field::ContractMonths, "2 years"), "24");
        assert_eq!(guess_value(k, Field::ContractMonths, "12 months"), "12");
        assert_eq!(guess_value(k, Field::ContractMonths, "Rolling"), "1");
        assert_eq!(guess_value(k, Field::ContractMonths, "18"), "");
    }

    #[test]
    fn toml_strings_are_escaped() {
        let s = toml_str("a \"b\" \\ c\u{1}");
        assert_eq!(s, "\"a \\\"b\\\" \\\\ c\\u0001\"");
        let v: toml::Value = toml::from_str(&format!("x = {s}")).unwrap();
        assert_eq!(v["x"].as_str(), Some("a \"b\" \\ c\u{1}"));
    }
}
