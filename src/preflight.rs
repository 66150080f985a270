//! The online pre-flight: what only the account knows, checked with paced List calls before any
//! write, as findings in the same shape (and the same report) as the offline checks.
//!
//! Referenced customers must exist (and a company name must name only one); numbers to add must
//! be in the available pool, or already in their customer; products must be in the catalogue;
//! delivery postcodes must be found by Lookup Addresses. What already exists (a customer, a user
//! email, a blocked number) is a warning that says what `--existing` will do with it. Each
//! collection is listed once, through the job's [`Lookups`], so that the matching is the
//! engine's own and the engine starts with what was listed here; only customers already in the
//! account are listed into.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::client::ApiError;
use crate::engine::Lookups;
use crate::findings::{Finding, Severity};
use crate::plan::{Inputs, Plan, Sel, Work};
use crate::schema::Field;

/// Runs every online check over the plan's valid rows. Each finding comes with the index of its
/// row in the plan.
pub async fn check(
    inputs: &Inputs,
    plan: &Plan,
    look: &Lookups,
) -> Result<Vec<(usize, Finding)>, ApiError> {
    let client = look.client();
    let mut out = Vec::new();
    let works: Vec<(usize, &Work)> = plan
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.work.as_ref()?)))
        .collect();
    let at = |i: usize, field: Field, severity: Severity, message: String| -> (usize, Finding) {
        let row = &plan.rows[i];
        let sheet = &inputs.sheets[row.sheet as usize];
        let col = sheet
            .columns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| *c);
        (
            i,
            Finding {
                severity,
                file: sheet.file.clone(),
                sheet: sheet.name.clone(),
                row: Some(row.row_no),
                column: col.map(|c| c as u32),
                header: col
                    .and_then(|c| sheet.headers.get(c))
                    .map(|h| Arc::from(h.as_str())),
                value: col
                    .and_then(|c| row.cells.get(c))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default(),
                message,
            },
        )
    };

    // Customers: every reference to the account's, and every one the job would add.
    let fold = |s: &str| s.trim().to_lowercase();
    // The account's customer each row is about, when it is already there.
    let mut existing_of: HashMap<usize, String> = HashMap::new();
    // Customers rows of the job (by row id) whose customer is already in the account.
    let mut added_existing: HashMap<i64, String> = HashMap::new();
    for (i, w) in &works {
        match w {
            Work::AddCustomer { new } => {
                if let Some(cu) = look.find_customer(new, false, &|_| true).await? {
                    // Rows that name this Customers row are about that customer.
                    added_existing.insert(*i as i64 + 1, cu.id.clone());
                    out.push(at(*i, Field::CompanyName, Severity::Warning, format!(
                        "this customer is already in the account ({}): with --existing skip (the default) it is recorded as already existed; update changes it to match; fail fails the row",
                        cu.id
                    )));
                }
            }
            _ => match w.customer() {
                Some(Sel::Row(r)) => {
                    if let Some(id) = added_existing.get(r) {
                        existing_of.insert(*i, id.clone());
                    }
                }
                Some(Sel::Existing(v)) | Some(Sel::Id(v)) => {
                    let field = if matches!(
                        w,
                        Work::UpdateCustomer { .. }
                            | Work::DeleteCustomer { .. }
                            | Work::RegradeContract { .. }
                            | Work::UpgradePlan { .. }
                    ) {
                        if matches!(w.customer(), Some(Sel::Id(_))) {
                            Field::CustomerId
                        } else {
                            Field::CompanyName
                        }
                    } else {
                        Field::Customer
                    };
                    match look.customer_id(v).await? {
                        Ok(id) => {
                            existing_of.insert(*i, id);
                        }
                        Err(why) => out.push(at(*i, field, Severity::Error, why)),
                    }
                }
                _ => {}
            },
        }
    }

    // Products, matched as the engine will match them.
    for (i, w) in &works {
        let products: Vec<&String> = match w {
            Work::AddDevice { product, .. } => vec![product],
            Work::AddOrder { items, .. } => items.iter().map(|(p, _)| p).collect(),
            _ => continue,
        };
        for p in products {
            if let Err(why) = look.product_id(p).await? {
                out.push(at(*i, Field::Product, Severity::Error, why));
            }
        }
    }

    // Numbers to add: available, or already in their (existing) customer.
    let adds: Vec<(usize, &String)> = works
        .iter()
        .filter_map(|(i, w)| match w {
            Work::AddNumber { number, .. } => Some((*i, number)),
            _ => None,
        })
        .collect();
    if !adds.is_empty() {
        let codes = client.list_area_codes().await?;
        let code_of = |e164: &str| -> Option<String> {
            let national = format!("0{}", e164.strip_prefix("+44")?);
            codes
                .iter()
                .filter(|a| national.starts_with(&a.code))
                .max_by_key(|a| a.code.len())
                .map(|a| a.code.clone())
        };
        let needed: BTreeSet<String> = adds.iter().filter_map(|(_, n)| code_of(n)).collect();
        let mut available: BTreeSet<String> = BTreeSet::new();
        for code in &needed {
            for a in client.list_available_numbers(code).await? {
                available.insert(a.number);
            }
        }
        let mut in_customer: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (i, number) in adds {
            if available.contains(number) {
                continue;
            }
            if let Some(cid) = existing_of.get(&i) {
                if !in_customer.contains_key(cid) {
                    let ns = look.numbers(cid, false).await?;
                    in_customer.insert(cid.clone(), ns.into_iter().map(|n| n.number).collect());
                }
                if in_customer[cid].contains(number) {
                    out.push(at(i, Field::Number, Severity::Warning, format!(
                        "{number} is already in customer {cid}: with --existing skip it is recorded as already existed"
                    )));
                    continue;
                }
            }
            out.push(at(i, Field::Number, Severity::Error, match code_of(number) {
                Some(code) => format!("{number} is not available to add (it is taken, or not one of PL+'s {code} numbers): pick one from List Available Numbers"),
                None => format!("{number} is in no area code PL+ offers numbers in"),
            }));
        }
    }

    // What existing customers already hold: user emails and blocked numbers.
    let mut users: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut blocked: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (i, w) in &works {
        let Some(cid) = existing_of.get(i) else {
            continue;
        };
        match w {
            Work::AddUser { new, .. } => {
                if !users.contains_key(cid) {
                    let all = look.users(cid, false).await?;
                    users.insert(
                        cid.clone(),
                        all.into_iter().map(|u| fold(&u.email)).collect(),
                    );
                }
                if users[cid].contains(&fold(&new.email)) {
                    out.push(at(*i, Field::Email, Severity::Warning, format!(
                        "customer {cid} already has a user with this email: with --existing skip it is recorded as already existed"
                    )));
                }
            }
            Work::AddBlocked { new, .. } => {
                if !blocked.contains_key(cid) {
                    let all = look.blocked(cid, false).await?;
                    blocked.insert(cid.clone(), all.into_iter().map(|b| b.number).collect());
                }
                if blocked[cid].contains(&new.number) {
                    out.push(at(*i, Field::Number, Severity::Warning, format!(
                        "{} is already blocked for customer {cid}: with --existing skip it is recorded as already existed",
                        new.number
                    )));
                }
            }
            _ => {}
        }
    }

    // Delivery postcodes.
    let mut postcodes: HashMap<String, bool> = HashMap::new();
    for (i, w) in &works {
        let Work::AddOrder {
            delivery: Some(a), ..
        } = w
        else {
            continue;
        };
        if !postcodes.contains_key(&a.postcode) {
            let found = client.lookup_addresses(&a.postcode).await?;
            postcodes.insert(a.postcode.clone(), !found.is_empty());
        }
        if !postcodes[&a.postcode] {
            out.push(at(
                *i,
                Field::DeliveryPostcode,
                Severity::Error,
                format!(
                    "Lookup Addresses finds no address for {}: check the postcode",
                    a.postcode
                ),
            ));
        }
    }

    if works
        .iter()
        .any(|(_, w)| matches!(w, Work::AddDevice { .. }))
    {
        if let Some((i, _)) = works
            .iter()
            .find(|(_, w)| matches!(w, Work::AddDevice { .. }))
        {
            out.push(at(*i, Field::Mac, Severity::Note, "MAC addresses cannot be checked before the run (the API lists no devices): one already in use fails its row, or, with --existing skip, is recorded as already existed".into()));
        }
    }
    Ok(out)
}
