//! Export: the account's current state, read through the API into an import template's
//! columns, so a partner can export, edit in Excel and run the file back.
//!
//! Rows are written so that running them back unchanged changes nothing and creates nothing:
//! customers, users and blocked numbers with Action update and their ids; numbers with Action
//! add (there is no update for a number), which finds each already in its customer and its
//! allocation already made; orders with the order's id as Order Ref, which the engine reads as
//! "this order, placed already". Reads are paced like any job's calls.

use std::path::Path;

use rust_xlsxwriter::{Color, Format, Workbook};

use crate::client::{ApiError, Client};
use crate::contract::{self as c, natural_key};
use crate::outputs::ExportFormat;
use crate::schema::{Field, Kind};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Refused(String),
    #[error("reading the account: {}", .0.detail())]
    Api(#[from] ApiError),
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

type Row = Vec<(Field, String)>;

/// Reads `kind` for every customer (or the one `customer` names, by id or company name) and
/// writes it to `path` as `format`. Returns the rows written.
pub async fn export(
    client: &Client,
    kind: Kind,
    customer: Option<&str>,
    path: &Path,
    format: ExportFormat,
) -> Result<usize, ExportError> {
    let mut customers = client.list_customers().await?;
    if let Some(want) = customer {
        let w = natural_key(want);
        customers.retain(|cu| cu.id.to_lowercase() == w || natural_key(&cu.company_name) == w);
        if customers.is_empty() {
            return Err(ExportError::Refused(format!(
                "no customer in the account has the id or company name {want:?}"
            )));
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let s = |v: &str| v.to_string();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let address = |a: &Option<c::Address>, f: [Field; 5]| -> Row {
        match a {
            Some(a) => vec![
                (f[0], a.line1.clone()),
                (f[1], opt(&a.line2)),
                (f[2], a.town.clone()),
                (f[3], opt(&a.county)),
                (f[4], a.postcode.clone()),
            ],
            None => vec![],
        }
    };
    for cu in &customers {
        match kind {
            Kind::Customers => {
                let mut r = vec![
                    (Field::Action, s("update")),
                    (Field::CustomerId, cu.id.clone()),
                    (Field::CompanyName, cu.company_name.clone()),
                    (Field::ContactName, opt(&cu.contact_name)),
                    (Field::Email, opt(&cu.email)),
                    (Field::Phone, opt(&cu.phone)),
                    (Field::Plan, s(cu.plan.as_str())),
                    (Field::ContractMonths, cu.contract_months.to_string()),
                ];
                r.extend(address(
                    &cu.address,
                    [
                        Field::Line1,
                        Field::Line2,
                        Field::Town,
                        Field::County,
                        Field::Postcode,
                    ],
                ));
                rows.push(r);
            }
            Kind::Users => {
                for u in client.list_users(&cu.id).await? {
                    rows.push(vec![
                        (Field::Action, s("update")),
                        (Field::Customer, cu.id.clone()),
                        (Field::UserId, u.id),
                        (Field::FirstName, u.first_name),
                        (Field::LastName, u.last_name),
                        (Field::Email, u.email),
                        (
                            Field::UserType,
                            s(match u.user_type {
                                c::UserType::Admin => "admin",
                                c::UserType::Standard => "standard",
                            }),
                        ),
                    ]);
                }
            }
            Kind::Numbers => {
                let numbers = client.list_customer_numbers(&cu.id).await?;
                let emails: std::collections::HashMap<String, String> =
                    if numbers.iter().any(|n| n.user_id.is_some()) {
                        client
                            .list_users(&cu.id)
                            .await?
                            .into_iter()
                            .map(|u| (u.id, u.email))
                            .collect()
                    } else {
                        Default::default()
                    };
                for n in numbers {
                    let user = n
                        .user_id
                        .as_ref()
                        .and_then(|u| emails.get(u).cloned())
                        .unwrap_or_default();
                    rows.push(vec![
                        (Field::Action, s("add")),
                        (Field::Customer, cu.id.clone()),
                        (Field::Number, n.number),
                        (Field::UserEmail, user),
                    ]);
                }
            }
            Kind::BlockedNumbers => {
                for b in client.list_blocked_numbers(&cu.id).await? {
                    rows.push(vec![
                        (Field::Action, s("update")),
                        (Field::Customer, cu.id.clone()),
                        (Field::Number, b.number),
                        (Field::Direction, s(b.direction.as_str())),
                        (Field::Note, opt(&b.note)),
                    ]);
                }
            }
            Kind::Orders => {
                for o in client.list_customer_orders(&cu.id).await? {
                    for item in &o.items {
                        let mut r = vec![
                            (Field::OrderRef, o.id.clone()),
                            (Field::Customer, cu.id.clone()),
                            (Field::Product, item.product_id.clone()),
                            (Field::Quantity, item.quantity.to_string()),
                        ];
                        r.extend(address(
                            &Some(o.delivery_address.clone()),
                            [
                                Field::DeliveryLine1,
                                Field::DeliveryLine2,
                                Field::DeliveryTown,
                                Field::DeliveryCounty,
                                Field::DeliveryPostcode,
                            ],
                        ));
                        rows.push(r);
                    }
                }
            }
            other => {
                return Err(ExportError::Refused(format!(
                    "{} cannot be exported: the API does not list them",
                    other.sheet_name()
                )))
            }
        }
    }
    match format {
        ExportFormat::Xlsx => write(kind, &rows, path)?,
        ExportFormat::Csv => write_csv(kind, &rows, path)?,
    }
    Ok(rows.len())
}

/// The rows as one CSV in the template's columns: UTF-8 with a BOM (so Excel shows accents
/// right), and a cell that would start a formula with a leading ', as results CSVs have.
fn write_csv(kind: Kind, rows: &[Row], path: &Path) -> Result<(), ExportError> {
    let werr = |e: &dyn std::fmt::Display| ExportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let columns = kind.columns();
    let mut buf = b"\xEF\xBB\xBF".to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut buf);
        w.write_record(columns.iter().map(|c| c.header))
            .map_err(|e| werr(&e))?;
        for row in rows {
            let cells = columns.iter().map(|c| {
                row.iter()
                    .find(|(f, _)| *f == c.field)
                    .map_or("", |(_, v)| v.as_str())
            });
            w.write_record(cells.map(|v| crate::results::inert(v).into_owned()))
                .map_err(|e| werr(&e))?;
        }
        w.flush().map_err(|e| werr(&e))?;
    }
    crate::atomic_write(path, &buf).map_err(|e| werr(&e))
}

fn write(kind: Kind, rows: &[Row], path: &Path) -> Result<(), ExportError> {
    let werr = |e: &dyn std::fmt::Display| ExportError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0x1F4E78))
        .set_font_color(Color::White);
    let text = crate::templates::text_format();
    let plain = Format::new();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(kind.sheet_name()).map_err(|e| werr(&e))?;
    let columns = kind.columns();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.header.len()).collect();
    for (i, col) in columns.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, col.header, &header)
            .map_err(|e| werr(&e))?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (field, v) in row {
            if v.is_empty() {
                continue;
            }
            if let Some(i) = columns.iter().position(|c| c.field == *field) {
                let format = if crate::templates::is_text_column(*field) {
                    &text
                } else {
                    &plain
                };
                ws.write_string_with_format(r as u32 + 1, i as u16, v, format)
                    .map_err(|e| werr(&e))?;
                widths[i] = widths[i].max(v.chars().count().min(50));
            }
        }
    }
    for (i, w) in widths.iter().enumerate() {
        ws.set_column_width(i as u16, (*w + 2) as f64)
            .map_err(|e| werr(&e))?;
        // As in the template: the file is edited and run back, and a phone number typed in
        // it keeps its leading 0.
        if crate::templates::is_text_column(columns[i].field) {
            ws.set_column_format(i as u16, &text)
                .map_err(|e| werr(&e))?;
        }
    }
    ws.set_freeze_panes(1, 0).map_err(|e| werr(&e))?;
    let orientation = if widths.iter().map(|w| w + 2).sum::<usize>() > 100 {
        crate::paper::Orientation::Landscape
    } else {
        crate::paper::Orientation::Portrait
    };
    crate::paper::setup(ws, orientation, Some((0, 0))).map_err(|e| werr(&e))?;
    let bytes = wb.save_to_buffer().map_err(|e| werr(&e))?;
    crate::atomic_write(path, &bytes).map_err(|e| werr(&e))
}
