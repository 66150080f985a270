//! The plan: validated rows turned into the work each stands for, in dependency order.
//!
//! Reading a job's inputs keeps every row's cells as the user gave them (the results show them
//! back) and its verdict. Each valid row then becomes one [`Work`]: what to call, with what, and
//! what it refers to. A reference to another row of the job (a user's customer added three
//! rows up, the user a number is allocated to) is a [`Sel::Row`] and a dependency: the engine
//! runs a row only once the rows it depends on have succeeded, and skips it, saying why, when
//! one of them did not. References to what is already in the account are resolved by the
//! engine with List calls. Rows sharing an Order Ref are one order, carried by its first row.
//!
//! Order: customers and partner users, then users, numbers (deallocations, additions,
//! allocations), blocked numbers, devices, settings, orders, and deletions last.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::contract::{self as c, natural_key};
use crate::findings::{Finding, Findings, Severity};
use crate::intake::digest::{self, FileDigest};
use crate::intake::mapping::Mapping;
use crate::intake::IntakeError;
use crate::model::{NewRow, RowState, Sel, SheetRec, Task, Work};
use crate::schema::{Action, CustomerAction, Field, Kind};
use crate::validate::op::{CustomerSel, Person, PersonDevice, PersonSel};
use crate::validate::{self, Op, Outcome, RowOp, SheetCounts, Validator, Verdict};

/// A sheet of the job as read.
#[derive(Debug, Clone)]
pub struct SheetIn {
    pub file: Arc<str>,
    pub name: Arc<str>,
    pub kind: Kind,
    pub headers: Vec<String>,
    pub columns: Vec<(Field, usize)>,
    /// Where the headers are: an error there (a missing column) is every row's.
    pub header_row: u32,
}

impl SheetIn {
    /// The column of field `f`, if the sheet has it.
    pub fn column_of(&self, f: Field) -> Option<usize> {
        self.columns.iter().find(|(g, _)| *g == f).map(|&(_, c)| c)
    }

    fn cell<'a>(&self, cells: &'a [String], f: Field) -> Option<&'a str> {
        let i = self.column_of(f)?;
        let v = cells.get(i)?.trim();
        (!v.is_empty()).then_some(v)
    }
}

/// A row as read: its cells as the user gave them, and its operation when it is valid.
#[derive(Debug, Clone)]
pub struct RowIn {
    pub sheet: u32,
    pub row_no: u32,
    pub cells: Vec<String>,
    /// The row's final verdict: None is invalid, on its own or across rows.
    pub op: Option<RowOp>,
}

impl RowIn {
    pub fn valid(&self) -> bool {
        self.op.is_some()
    }
}

/// Everything read from a job's input files but their rows, which [`read`] hands over apart
/// so that [`build`] can move them into the plan rather than copy them.
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub sheets: Vec<SheetIn>,
    pub outcome: Outcome,
    /// Files or sheets that could not be read, as messages.
    pub unreadable: Vec<String>,
    /// The mapping file the files were read through: an input of the job as they are.
    pub mapping: Option<Arc<Mapping>>,
    /// Each file's digest, of the bytes its rows were read from; or why there is none.
    digests: Vec<Result<FileDigest, String>>,
}

impl Inputs {
    /// The inputs as a job records them: each file's digest and size, taken as its rows were
    /// read. Reading a file again for its digest would name whatever is on disk by then, and
    /// a file replaced in between would have its digest on the other file's rows. A mapping
    /// is the last input, digested from the text the rows were mapped with: another mapping
    /// is another job, and a resume checks it as it checks the files.
    pub fn fingerprint(&self) -> Result<Vec<crate::journal::InputFile>, IntakeError> {
        let mut files = self
            .files
            .iter()
            .zip(&self.digests)
            .map(|(f, d)| match d {
                Ok(d) => Ok(input_file(f, *d)),
                Err(why) => Err(IntakeError::Io {
                    path: f.clone(),
                    source: std::io::Error::other(why.clone()),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(m) = &self.mapping {
            files.push(input_file(m.path(), m.digest()));
        }
        Ok(files)
    }

    pub fn errors(&self) -> u64 {
        self.outcome.findings.errors() + self.unreadable.len() as u64
    }

    pub fn counts(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>, Kind, &SheetCounts)> {
        self.outcome.sheets.iter().map(|(f, s, k, c)| (f, s, *k, c))
    }
}

/// Reads and validates every input (each through `mapping` when one is given), keeping each
/// row's cells and operation.
pub fn read(
    files: &[PathBuf],
    kind: Option<Kind>,
    mapping: Option<Arc<Mapping>>,
) -> (Inputs, Vec<RowIn>) {
    let mut sheets = Vec::new();
    let mut rows = Vec::new();
    // Per sheet, how many of a row's cells are the export's own: a mapped sheet's rows are
    // kept (and the pre-flight's findings placed) in the export's columns, so that the
    // results and the to-fix are the partner's file, to run back with the same mapping.
    let mut widths: Vec<Option<usize>> = Vec::new();
    let mut digests = vec![Err("it was not read".to_string()); files.len()];
    let (outcome, unreadable) = validate::check_files(
        Validator::building_ops(),
        files,
        kind,
        mapping.as_ref(),
        |sheet| {
            let (width, columns) = match &sheet.mapped {
                Some(shape) => (Some(shape.source_width()), shape.source_columns()),
                None => (None, sheet.columns.clone()),
            };
            widths.push(width);
            sheets.push(SheetIn {
                file: sheet.file.clone(),
                name: sheet.name.clone(),
                kind: sheet.kind,
                headers: sheet
                    .headers
                    .iter()
                    .take(width.unwrap_or(usize::MAX))
                    .map(|h| h.to_string())
                    .collect(),
                columns,
                header_row: sheet.header_row,
            })
        },
        |sheet, row_no, row, v, op| {
            if v != Verdict::Ignored {
                rows.push(RowIn {
                    sheet,
                    row_no,
                    cells: row.iter().map(str::to_string).collect(),
                    op,
                });
            }
        },
        |at, d| digests[at] = d,
    );
    for r in &mut rows {
        if let Some(w) = widths[r.sheet as usize] {
            r.cells.truncate(w);
        }
    }
    // A row valid on its own may be invalid across rows (a repeat, an ambiguous name).
    let overruled: HashSet<(&str, &str, u32)> = outcome.overruled().collect();
    if !overruled.is_empty() {
        for r in &mut rows {
            let s = &sheets[r.sheet as usize];
            if overruled.contains(&(&*s.file, &*s.name, r.row_no)) {
                r.op = None;
            }
        }
    }
    drop(overruled);
    let inputs = Inputs {
        files: files.to_vec(),
        sheets,
        outcome,
        unreadable,
        mapping,
        digests,
    };
    (inputs, rows)
}

/// The error findings of each row, and of each sheet's header (a missing column is every
/// row's), gathered in one pass so an invalid row's Detail costs a lookup.
struct RowErrors<'a> {
    by_row: HashMap<(&'a str, &'a str, u32), Vec<&'a Finding>>,
    /// The mapping the rows were read through: validate needs it too to say why.
    mapping: Option<&'a Mapping>,
}

impl<'a> RowErrors<'a> {
    fn new(findings: &'a Findings, mapping: Option<&'a Mapping>) -> RowErrors<'a> {
        let mut by_row: HashMap<_, Vec<&Finding>> = HashMap::new();
        for f in findings.items() {
            if let (Severity::Error, Some(row)) = (f.severity, f.row) {
                by_row
                    .entry((&*f.file, &*f.sheet, row))
                    .or_default()
                    .push(f);
            }
        }
        RowErrors { by_row, mapping }
    }

    /// Errors of one row, as one line for its Detail.
    fn detail(&self, sheet: &SheetIn, row_no: u32) -> String {
        let at = |row| self.by_row.get(&(&*sheet.file, &*sheet.name, row));
        let whole_sheet = at(sheet.header_row)
            .into_iter()
            .flatten()
            .filter(|f| f.column.is_none());
        let own = at(row_no).into_iter().flatten();
        let msgs: Vec<String> = own
            .chain(whole_sheet)
            .map(|f| match &f.header {
                Some(h) => format!("{h}: {}", f.message),
                None => f.message.clone(),
            })
            .collect();
        if msgs.is_empty() {
            // Its findings were not kept (past the count kept in memory): validate writes
            // them all, with the cell marked. A run writes no report to point at.
            format!(
                "invalid: plbulk validate {}{} lists why, with the cell marked",
                sheet.file,
                self.mapping
                    .map_or(String::new(), |m| format!(" --map {}", m.path().display()))
            )
        } else {
            msgs.join("; ")
        }
    }
}

/// The plan, ready for the journal.
pub struct Plan {
    pub sheets: Vec<SheetRec>,
    pub rows: Vec<NewRow>,
}

impl Plan {
    /// Write calls per operation, in the order they first occur, for `--dry-run`.
    pub fn calls(&self) -> Vec<(c::Operation, u64)> {
        let mut out: Vec<(c::Operation, u64)> = Vec::new();
        for r in &self.rows {
            let Some(work) = &r.work else { continue };
            for op in work.operations() {
                match out.iter_mut().find(|(o, _)| *o == op) {
                    Some((_, n)) => *n += 1,
                    None => out.push((op, 1)),
                }
            }
        }
        out
    }
}

/// The calls a row of several tasks expands to, as the dry run shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCalls {
    /// The task's own write calls.
    Calls(Task, Vec<c::Operation>),
    /// A line of its customer's order, which another row's task places.
    InOrder(Task),
    /// The task (or, with none, the whole row) is invalid: nothing is sent for it.
    Invalid(Option<Task>),
}

/// Rows of one sheet that expand to the same calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    pub sheet: String,
    pub calls: Vec<TaskCalls>,
    /// The rows, as the sheet numbers them.
    pub rows: Vec<u32>,
}

impl Plan {
    /// Source rows, not tasks: a Migration row is one row however many tasks it stands for.
    pub fn source_rows(&self) -> u64 {
        let mut seen: HashSet<(u32, u32)> = HashSet::new();
        self.rows
            .iter()
            .filter(|r| r.task.is_none() || seen.insert((r.sheet, r.row_no)))
            .count() as u64
    }

    /// Each row of several tasks as the calls it expands to, rows that expand alike together,
    /// in the order first seen: what the dry run shows of a Migration sheet.
    pub fn expansions(&self) -> Vec<Expansion> {
        let mut by_row: Vec<((u32, u32), Vec<TaskCalls>)> = Vec::new();
        let mut at: HashMap<(u32, u32), usize> = HashMap::new();
        // A sheet's kind, parsed once, not for each of its rows.
        let migration: Vec<bool> = self
            .sheets
            .iter()
            .map(|s| Kind::from_name(&s.kind) == Some(Kind::Migration))
            .collect();
        for r in &self.rows {
            let Some(task) = r.task else {
                if r.state == RowState::Invalid && migration[r.sheet as usize] {
                    at.entry((r.sheet, r.row_no)).or_insert_with(|| {
                        by_row.push(((r.sheet, r.row_no), vec![TaskCalls::Invalid(None)]));
                        by_row.len() - 1
                    });
                }
                continue;
            };
            let calls = match (&r.work, r.lead) {
                (Some(w), _) => TaskCalls::Calls(task, w.operations()),
                (None, Some(_)) => TaskCalls::InOrder(task),
                (None, None) => TaskCalls::Invalid(Some(task)),
            };
            let i = *at.entry((r.sheet, r.row_no)).or_insert_with(|| {
                by_row.push(((r.sheet, r.row_no), Vec::new()));
                by_row.len() - 1
            });
            by_row[i].1.push(calls);
        }
        by_row.sort_by_key(|(at, _)| *at);
        let mut out: Vec<Expansion> = Vec::new();
        for ((sheet, row_no), mut calls) in by_row {
            calls.sort_by_key(|c| match c {
                TaskCalls::Calls(t, _) | TaskCalls::InOrder(t) | TaskCalls::Invalid(Some(t)) => {
                    Some(*t)
                }
                TaskCalls::Invalid(None) => None,
            });
            let name = &self.sheets[sheet as usize].sheet;
            match out
                .iter_mut()
                .find(|e| &e.sheet == name && e.calls == calls)
            {
                Some(e) => e.rows.push(row_no),
                None => out.push(Expansion {
                    sheet: self.sheets[sheet as usize].sheet.clone(),
                    calls,
                    rows: vec![row_no],
                }),
            }
        }
        out
    }
}

impl Expansion {
    /// Write calls a row of these makes.
    pub fn writes(&self) -> u64 {
        self.calls
            .iter()
            .map(|c| match c {
                TaskCalls::Calls(_, ops) => ops.len() as u64,
                TaskCalls::InOrder(_) | TaskCalls::Invalid(_) => 0,
            })
            .sum()
    }

    /// Each task, as "Number: Add Customer Number + Allocate Customer Number".
    pub fn steps(&self) -> Vec<String> {
        self.calls
            .iter()
            .map(|c| match c {
                TaskCalls::Calls(t, ops) => format!(
                    "{}: {}",
                    t.label(),
                    ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(" + ")
                ),
                TaskCalls::InOrder(t) => {
                    format!("{}: a line of its customer's one order", t.label())
                }
                TaskCalls::Invalid(Some(t)) => format!("{}: invalid, not sent", t.label()),
                TaskCalls::Invalid(None) => "invalid: nothing is sent".to_string(),
            })
            .collect()
    }

    /// "row 7", or "rows 2-4, 7, 9 (5 rows)"; past a dozen runs, "… and N more rows".
    pub fn rows_text(&self) -> String {
        let rows = &self.rows;
        if let [one] = rows.as_slice() {
            return format!("row {one}");
        }
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &r in rows {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == r => *end = r,
                _ => runs.push((r, r)),
            }
        }
        let mut shown = 0;
        let mut out: Vec<String> = Vec::new();
        for (a, b) in runs.iter().take(12) {
            shown += (b - a + 1) as usize;
            out.push(if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            });
        }
        if rows.len() > shown {
            out.push(format!(
                "… and {}",
                crate::words::count((rows.len() - shown) as u64, "more row")
            ));
        }
        format!("rows {} ({} rows)", out.join(", "), rows.len())
    }
}

/// When a row runs: customers and partner users first, deletions last (a customer's last).
fn phase(action: Action) -> u8 {
    crate::actions::spec(action).phase
}

/// Builds the plan from what was read. Invalid rows are kept, as invalid, when `skip_invalid`
/// (so the results show them); the caller refuses to run otherwise.
pub fn build(inputs: &Inputs, input: Vec<RowIn>) -> Plan {
    let sheets: Vec<SheetRec> = inputs
        .sheets
        .iter()
        .enumerate()
        .map(|(i, s)| SheetRec {
            idx: i as u32,
            file: s.file.to_string(),
            sheet: s.name.to_string(),
            kind: s.kind.cli_name().to_string(),
            headers: s.headers.clone(),
        })
        .collect();

    let mut input = tasks(input);
    // Order: by phase, then as the input has it. An invalid row's action is read from its
    // cell when it names one (so an invalid customer added is still known by its Ref), and is
    // its kind's default when not: it never runs, so only its place in the results depends on
    // it. An invalid Migration row stands for no one action: it goes first.
    let actions: Vec<Option<Action>> = input
        .iter()
        .map(|r| match &r.op {
            Some(op) => Some(op.action()),
            None => {
                let s = &inputs.sheets[r.sheet as usize];
                Action::parse(s.kind, s.cell(&r.cells, Field::Action).unwrap_or(""))
                    .or_else(|| Action::default_of(s.kind))
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..input.len()).collect();
    order.sort_by_key(|&i| (actions[i].map_or(0, phase), i));
    let mut id_of = vec![0i64; input.len()];
    for (pos, &i) in order.iter().enumerate() {
        id_of[i] = pos as i64 + 1;
    }

    let mut b = Builder::default();
    // Customers first: every other sheet refers to them. Invalid ones too, so that a row
    // naming one is skipped as depending on an invalid row rather than looked for elsewhere.
    for &i in &order {
        let r = &input[i];
        if actions[i] != Some(Action::Customer(CustomerAction::Add)) {
            continue;
        }
        let (reference, name) = match &r.op {
            Some(Op::AddCustomer { reference, new }) => {
                (reference.as_deref(), Some(&*new.company_name))
            }
            _ => {
                let s = &inputs.sheets[r.sheet as usize];
                (
                    s.cell(&r.cells, Field::Ref),
                    s.cell(&r.cells, Field::CompanyName),
                )
            }
        };
        if let Some(rf) = reference {
            b.refs.insert(natural_key(rf), id_of[i]);
        }
        if let Some(n) = name {
            b.names.entry(natural_key(n)).or_default().push(id_of[i]);
        }
    }
    // Every row that makes a user or a number is known before any row refers to one: a
    // reference above its add, or spelt through another name of the customer, still waits.
    for &i in &order {
        if let Some(op) = &input[i].op {
            b.register(op, id_of[i]);
        }
    }
    // An order with an invalid row is not placed in part: its other rows are invalid too.
    let mut broken_orders: HashMap<(String, String), u32> = HashMap::new();
    for r in input.iter().filter(|r| r.op.is_none()) {
        let s = &inputs.sheets[r.sheet as usize];
        let (order, customer) = match s.kind {
            Kind::Orders => (
                s.cell(&r.cells, Field::OrderRef),
                s.cell(&r.cells, Field::Customer),
            ),
            // A Migration row ordering a phone (a Device without a MAC) is a line of its
            // customer's one order.
            Kind::Migration => (
                s.cell(&r.cells, Field::Product)
                    .filter(|_| s.cell(&r.cells, Field::Mac).is_none())
                    .map(|_| ""),
                s.cell(&r.cells, Field::Ref)
                    .or_else(|| s.cell(&r.cells, Field::CompanyName)),
            ),
            Kind::Customers
            | Kind::Users
            | Kind::Numbers
            | Kind::BlockedNumbers
            | Kind::Devices
            | Kind::UserSettings
            | Kind::PartnerUsers => (None, None),
        };
        if let (Some(o), Some(cu)) = (order, customer) {
            let key = (Builder::customer_key(&b.customer(cu)), natural_key(o));
            broken_orders.entry(key).or_insert(r.row_no);
        }
    }
    let errors = RowErrors::new(&inputs.outcome.findings, inputs.mapping.as_deref());
    let mut rows: Vec<NewRow> = Vec::with_capacity(order.len());
    // Each row's work stays typed until the end, so that an order's members can add their
    // items to it in place.
    let mut works: Vec<Option<Work>> = (0..order.len()).map(|_| None).collect();
    for &i in &order {
        let r = &mut input[i];
        let s = &inputs.sheets[r.sheet as usize];
        let id = id_of[i];
        let mut row = NewRow {
            sheet: r.sheet,
            row_no: r.row_no,
            task: r.task,
            // Moved: the plan owns the cells from here.
            cells: std::mem::take(&mut r.cells),
            work: None,
            deps: Vec::new(),
            lead: None,
            state: RowState::Pending,
            detail: None,
        };
        let Some(op) = r.op.take() else {
            row.state = RowState::Invalid;
            row.detail = Some(errors.detail(s, r.row_no));
            rows.push(row);
            continue;
        };
        if let Op::OrderLine {
            customer,
            order_ref,
            ..
        } = &op
        {
            let key = (
                Builder::customer_key(&b.customer(customer)),
                natural_key(order_ref.as_deref().unwrap_or("")),
            );
            if let Some(bad) = broken_orders.get(&key) {
                row.state = RowState::Invalid;
                row.detail = Some(match order_ref {
                    Some(o) => format!(
                        "row {bad} of order {o} is invalid, and an order is not placed in part: fix that row"
                    ),
                    None => format!(
                        "row {bad}, which also orders a phone for this customer, is invalid, and the customer's order is placed whole: fix that row"
                    ),
                });
                rows.push(row);
                continue;
            }
        }
        match b.work(op, id) {
            Planned::Work(work, mut deps) => {
                for sel in [work.customer()].into_iter().flatten() {
                    deps.extend(sel.row());
                }
                deps.sort_unstable();
                deps.dedup();
                deps.retain(|d| *d != id);
                row.deps = deps;
                works[rows.len()] = Some(*work);
            }
            Planned::MemberOf(lead, item) => {
                // Members of an order carry their items to its first row. A customer's
                // Migration order has one line per product, its quantities summed.
                if let Some(Work::AddOrder {
                    items, order_ref, ..
                }) = &mut works[lead as usize - 1]
                {
                    match items.iter_mut().find(|(p, _)| {
                        order_ref.is_none() && natural_key(p) == natural_key(&item.0)
                    }) {
                        Some((_, n)) => *n += item.1,
                        None => items.push(item),
                    }
                }
                row.lead = Some(lead);
                row.deps = vec![lead];
            }
        }
        rows.push(row);
    }
    for (row, work) in rows.iter_mut().zip(works) {
        row.work = work;
    }
    Plan { sheets, rows }
}

/// One task of a row, as the plan orders and builds them: a row of today's sheets is one,
/// with no task named; a Migration row is one per part it has.
struct Entry {
    sheet: u32,
    row_no: u32,
    task: Option<Task>,
    cells: Vec<String>,
    op: Option<Op>,
}

/// Each row as its tasks. A Migration row's customer is made by the first valid row naming
/// it; its user, number and phone by each row, naming the customer as the rows do, so the
/// plan ties them to the task that makes it.
fn tasks(input: Vec<RowIn>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(input.len());
    let mut customers: HashSet<String> = HashSet::new();
    for r in input {
        let one = |task, cells, op| Entry {
            sheet: r.sheet,
            row_no: r.row_no,
            task,
            cells,
            op,
        };
        match r.op {
            None => out.push(one(None, r.cells, None)),
            Some(RowOp::One(op)) => out.push(one(None, r.cells, Some(op))),
            Some(RowOp::Person(p)) => {
                let Person {
                    customer,
                    reference,
                    new_customer,
                    user,
                    number,
                    device,
                } = *p;
                let email = user.as_ref().map(|u| u.email.clone());
                let delivery = new_customer.address.clone();
                let mut ops = Vec::with_capacity(4);
                if customers.insert(natural_key(&customer)) {
                    ops.push((
                        Task::Customer,
                        Op::AddCustomer {
                            reference,
                            new: new_customer,
                        },
                    ));
                }
                if let Some(new) = user {
                    ops.push((
                        Task::User,
                        Op::AddUser {
                            customer: customer.clone(),
                            new,
                        },
                    ));
                }
                if let Some(number) = number {
                    ops.push((
                        Task::Number,
                        Op::AddNumber {
                            customer: customer.clone(),
                            number,
                            allocate_to: email.clone(),
                        },
                    ));
                }
                match (device, email) {
                    (Some(PersonDevice::Assigned { product, mac }), Some(user)) => ops.push((
                        Task::Device,
                        Op::AddDevice {
                            customer: customer.clone(),
                            user,
                            product,
                            mac,
                        },
                    )),
                    (Some(PersonDevice::Ordered { product }), _) => ops.push((
                        Task::Order,
                        Op::OrderLine {
                            customer: customer.clone(),
                            order_ref: None,
                            item: (product, 1),
                            delivery,
                        },
                    )),
                    // Validation refuses a MAC on a row without a user.
                    (Some(PersonDevice::Assigned { .. }), None) | (None, _) => {}
                }
                let last = ops.len().saturating_sub(1);
                let mut cells = Some(r.cells);
                for (i, (task, op)) in ops.into_iter().enumerate() {
                    let cells = if i == last {
                        cells.take().unwrap_or_default()
                    } else {
                        cells.clone().unwrap_or_default()
                    };
                    out.push(one(Some(task), cells, Some(op)));
                }
            }
        }
    }
    out
}

enum Planned {
    Work(Box<Work>, Vec<i64>),
    /// A later line of an order: its item, for the order's first row.
    MemberOf(i64, (String, u32)),
}

#[derive(Default)]
struct Builder {
    /// Customers rows' Refs and company names (lower case) → row id.
    refs: HashMap<String, i64>,
    names: HashMap<String, Vec<i64>>,
    /// (customer key, email) → the Users add row.
    users: HashMap<(String, String), i64>,
    /// (customer key, number) → the Numbers add row.
    numbers: HashMap<(String, String), i64>,
    /// Email → the Users add rows in customers of the account (not made by the job), and
    /// number → the Numbers add rows there. One account customer can be named by its id in one
    /// row and its name in another, which the plan cannot tell apart: a reference through any
    /// account customer waits for each of these (ordering only; what it names is resolved by
    /// the engine).
    loose_users: HashMap<String, Vec<i64>>,
    loose_numbers: HashMap<String, Vec<i64>>,
    deallocs: HashMap<(String, String), i64>,
    /// (customer key, order ref) → the order's first row.
    orders: HashMap<(String, String), i64>,
}

impl Builder {
    /// The customer a cell names: a Ref, a company name added in this job, or the account's.
    fn customer(&self, value: &str) -> Sel {
        let k = natural_key(value);
        if let Some(r) = self.refs.get(&k) {
            return Sel::Row(*r);
        }
        match self.names.get(&k).map(Vec::as_slice) {
            Some([one]) => Sel::Row(*one),
            _ => Sel::Existing(value.trim().to_string()),
        }
    }

    /// The customer a Customers row changes.
    fn customer_of(&self, sel: &CustomerSel) -> Sel {
        match sel {
            CustomerSel::Id(id) => Sel::Id(id.clone()),
            CustomerSel::Name(name) => self.customer(name),
        }
    }

    fn customer_key(sel: &Sel) -> String {
        match sel {
            Sel::Row(r) => format!("row:{r}"),
            Sel::Id(s) | Sel::Existing(s) | Sel::Email(s) => format!("acct:{}", natural_key(s)),
        }
    }

    /// Notes a row that makes a user or a number, before any row is planned.
    fn register(&mut self, op: &Op, id: i64) {
        match op {
            Op::AddUser { customer, new } => {
                let customer = self.customer(customer);
                let email = natural_key(&new.email);
                if customer.row().is_none() {
                    self.loose_users.entry(email.clone()).or_default().push(id);
                }
                self.users
                    .insert((Self::customer_key(&customer), email), id);
            }
            Op::AddNumber {
                customer, number, ..
            } => {
                let customer = self.customer(customer);
                if customer.row().is_none() {
                    self.loose_numbers
                        .entry(number.clone())
                        .or_default()
                        .push(id);
                }
                self.numbers
                    .insert((Self::customer_key(&customer), number.clone()), id);
            }
            Op::AddCustomer { .. }
            | Op::UpdateCustomer { .. }
            | Op::DeleteCustomer { .. }
            | Op::RegradeContract { .. }
            | Op::UpgradePlan { .. }
            | Op::UpdateUser { .. }
            | Op::DeleteUser { .. }
            | Op::ResendActivation { .. }
            | Op::ResetPassword { .. }
            | Op::AllocateNumber { .. }
            | Op::DeallocateNumber { .. }
            | Op::AddBlocked { .. }
            | Op::UpdateBlocked { .. }
            | Op::DeleteBlocked { .. }
            | Op::AddDevice { .. }
            | Op::OrderLine { .. }
            | Op::UserSettings { .. }
            | Op::AddPartnerUser { .. }
            | Op::UpdatePartnerUser { .. }
            | Op::DeletePartnerUser { .. } => {}
        }
    }

    /// The rows a reference to the user `email` of `customer` must wait for.
    fn user_deps(&self, customer: &Sel, email: &str) -> Vec<i64> {
        let mut deps: Vec<i64> = self.user(customer, email).row().into_iter().collect();
        if customer.row().is_none() {
            deps.extend(
                self.loose_users
                    .get(&natural_key(email))
                    .into_iter()
                    .flatten(),
            );
        }
        deps
    }

    /// The rows a reference to `number` of `customer` must wait for.
    fn number_deps(&self, customer: &Sel, number: &str) -> Vec<i64> {
        let key = (Self::customer_key(customer), number.to_string());
        let mut deps: Vec<i64> = self.numbers.get(&key).copied().into_iter().collect();
        if customer.row().is_none() {
            deps.extend(self.loose_numbers.get(number).into_iter().flatten());
        }
        deps
    }

    fn user(&self, customer: &Sel, email: &str) -> Sel {
        match self
            .users
            .get(&(Self::customer_key(customer), natural_key(email)))
        {
            Some(r) => Sel::Row(*r),
            None => Sel::Email(email.trim().to_string()),
        }
    }

    /// The user a row names, and the rows it must wait for.
    fn person(&self, customer: &Sel, sel: &PersonSel, deps: &mut Vec<i64>) -> Sel {
        match sel {
            PersonSel::Id(id) => Sel::Id(id.clone()),
            PersonSel::Email(email) => {
                deps.extend(self.user_deps(customer, email));
                self.user(customer, email)
            }
        }
    }

    /// The user a row names by User Email, and the rows it must wait for.
    fn user_by_email(&self, customer: &Sel, email: &str, deps: &mut Vec<i64>) -> Sel {
        deps.extend(self.user_deps(customer, email));
        self.user(customer, email)
    }

    fn work(&mut self, op: Op, id: i64) -> Planned {
        let mut deps = Vec::new();
        let work = match op {
            Op::AddCustomer { new, .. } => Work::AddCustomer { new },
            Op::UpdateCustomer { customer, changes } => Work::UpdateCustomer {
                customer: self.customer_of(&customer),
                changes,
            },
            Op::DeleteCustomer { customer } => Work::DeleteCustomer {
                customer: self.customer_of(&customer),
            },
            Op::RegradeContract { customer, months } => Work::RegradeContract {
                customer: self.customer_of(&customer),
                months,
            },
            Op::UpgradePlan { customer } => Work::UpgradePlan {
                customer: self.customer_of(&customer),
            },
            // Another add of the same email is refused by the server (409); it does not wait
            // for this one.
            Op::AddUser { customer, new } => Work::AddUser {
                customer: self.customer(&customer),
                new,
            },
            Op::UpdateUser {
                customer,
                user,
                changes,
            } => {
                let customer = self.customer(&customer);
                Work::UpdateUser {
                    user: self.person(&customer, &user, &mut deps),
                    customer,
                    changes,
                }
            }
            Op::DeleteUser { customer, user } => {
                let customer = self.customer(&customer);
                Work::DeleteUser {
                    user: self.person(&customer, &user, &mut deps),
                    customer,
                }
            }
            Op::ResendActivation { customer, user } => {
                let customer = self.customer(&customer);
                Work::ResendActivation {
                    user: self.person(&customer, &user, &mut deps),
                    customer,
                }
            }
            Op::ResetPassword { customer, user } => {
                let customer = self.customer(&customer);
                Work::ResetPassword {
                    user: self.person(&customer, &user, &mut deps),
                    customer,
                }
            }
            Op::AddNumber {
                customer,
                number,
                allocate_to,
            } => {
                let customer = self.customer(&customer);
                let key = (Self::customer_key(&customer), number.clone());
                deps.extend(self.deallocs.get(&key));
                Work::AddNumber {
                    allocate_to: allocate_to.map(|e| self.user_by_email(&customer, &e, &mut deps)),
                    customer,
                    number,
                }
            }
            Op::AllocateNumber {
                customer,
                number,
                user,
            } => {
                let customer = self.customer(&customer);
                let key = (Self::customer_key(&customer), number.clone());
                deps.extend(self.number_deps(&customer, &number));
                deps.extend(self.deallocs.get(&key));
                Work::AllocateNumber {
                    user: self.user_by_email(&customer, &user, &mut deps),
                    customer,
                    number,
                }
            }
            Op::DeallocateNumber { customer, number } => {
                let customer = self.customer(&customer);
                deps.extend(self.number_deps(&customer, &number));
                self.deallocs
                    .insert((Self::customer_key(&customer), number.clone()), id);
                Work::DeallocateNumber { customer, number }
            }
            Op::AddBlocked { customer, new } => Work::AddBlocked {
                customer: self.customer(&customer),
                new,
            },
            Op::UpdateBlocked {
                customer,
                number,
                changes,
            } => Work::UpdateBlocked {
                customer: self.customer(&customer),
                number,
                changes,
            },
            Op::DeleteBlocked { customer, number } => Work::DeleteBlocked {
                customer: self.customer(&customer),
                number,
            },
            Op::AddDevice {
                customer,
                user,
                product,
                mac,
            } => {
                let customer = self.customer(&customer);
                Work::AddDevice {
                    user: self.user_by_email(&customer, &user, &mut deps),
                    customer,
                    product,
                    mac,
                }
            }
            Op::OrderLine {
                customer,
                order_ref,
                item,
                delivery,
            } => {
                let customer = self.customer(&customer);
                let key = (
                    Self::customer_key(&customer),
                    natural_key(order_ref.as_deref().unwrap_or("")),
                );
                if let Some(lead) = self.orders.get(&key) {
                    return Planned::MemberOf(*lead, item);
                }
                self.orders.insert(key, id);
                Work::AddOrder {
                    customer,
                    items: vec![item],
                    delivery,
                    order_ref,
                }
            }
            Op::UserSettings {
                customer,
                user,
                call,
                schedule,
            } => {
                let customer = self.customer(&customer);
                Work::UserSettings {
                    user: self.user_by_email(&customer, &user, &mut deps),
                    customer,
                    call,
                    schedule,
                }
            }
            Op::AddPartnerUser { new } => Work::AddPartnerUser { new },
            Op::UpdatePartnerUser {
                partner_user,
                changes,
            } => Work::UpdatePartnerUser {
                partner_user: partner_sel(partner_user),
                changes,
            },
            Op::DeletePartnerUser { partner_user } => Work::DeletePartnerUser {
                partner_user: partner_sel(partner_user),
            },
        };
        Planned::Work(Box::new(work), deps)
    }
}

fn partner_sel(sel: PersonSel) -> Sel {
    match sel {
        PersonSel::Id(id) => Sel::Id(id),
        PersonSel::Email(email) => Sel::Email(email),
    }
}

/// The fingerprint of the files as they are on disk now: each one's digest and size, read
/// again, so a resume can tell whether its input changed. A run takes its inputs' fingerprint
/// from the read itself ([`Inputs::fingerprint`]), never from this second read.
pub fn fingerprint(files: &[PathBuf]) -> Result<Vec<crate::journal::InputFile>, IntakeError> {
    files
        .iter()
        .map(|f| {
            let d = digest::of_file(f).map_err(|e| IntakeError::Io {
                path: f.clone(),
                source: e,
            })?;
            Ok(input_file(f, d))
        })
        .collect()
}

/// An input as a job records it.
fn input_file(path: &Path, d: FileDigest) -> crate::journal::InputFile {
    crate::journal::InputFile {
        path: canonical(path).display().to_string(),
        size: d.size,
        hash: format!("{:016x}", d.hash),
    }
}

/// An input's one name: links and `..` resolved, so a resume from another directory, or by
/// another spelling, finds the same file.
pub(crate) fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 10, item 9: a reference waits for the row that makes what it names, whether it
    /// comes above that row or names the customer another way.
    #[test]
    fn a_reference_waits_for_its_add_however_it_is_spelt() {
        let (_d, plan) = plan_of(&[(
            "users.csv",
            "Action,Customer,First Name,Last Name,Email,User Type\n\
             update,cus_000001,Ann,Lee-Smith,ann@acme.example,\n\
             add,cus_000001,Ann,Lee,ann@acme.example,standard\n",
        )]);
        let add = plan
            .rows
            .iter()
            .position(|r| r.row_no == 3)
            .map(|i| i as i64 + 1)
            .unwrap();
        let update = plan.rows.iter().find(|r| r.row_no == 2).unwrap();
        assert_eq!(
            update.deps,
            vec![add],
            "the update above its add waits for it"
        );

        let (_d, plan) = plan_of(&[
            (
                "users.csv",
                "Customer,First Name,Last Name,Email\ncus_000001,Ann,Lee,ann@acme.example\n",
            ),
            (
                "numbers.csv",
                "Action,Customer,Number,User Email\nallocate,Acme Ltd,01632 960001,ann@acme.example\n",
            ),
        ]);
        let add = plan.rows.iter().position(|r| r.sheet == 0).unwrap() as i64 + 1;
        let alloc = plan.rows.iter().find(|r| r.sheet == 1).unwrap();
        assert_eq!(
            alloc.deps,
            vec![add],
            "allocated under the customer's name, added under its id"
        );
    }

    /// Issue 11: a missing column is said on the header row, and is every row's reason.
    #[test]
    fn a_missing_column_is_the_detail_of_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(
            &p,
            "Company Nmae,Email,Plan,Contract Months\nA Ltd,a@a.example,pro,12\nB Ltd,b@b.example,pro,12\n",
        )
        .unwrap();
        let (inputs, rows) = read(&[p], Some(Kind::Customers), None);
        let plan = build(&inputs, rows);
        assert_eq!(plan.rows.len(), 2);
        for r in &plan.rows {
            assert_eq!(r.state, RowState::Invalid);
            let d = r.detail.as_deref().unwrap_or("");
            assert!(
                d.contains("no Company Name column"),
                "row {}: {d}",
                r.row_no
            );
        }
    }

    const PEOPLE: &str = "Customer Ref,Company Name,Company Email,Plan,Contract Months,Address Line 1,Town,Postcode,First Name,Last Name,User Email,Number,Device,MAC Address\n";

    /// A Migration row is its tasks: the customer once (the first row naming it), each
    /// person's user, number and phone, tied to the tasks they need; the phones without a MAC
    /// one order per customer, its quantities summed per product.
    #[test]
    fn a_migration_row_is_its_tasks_and_a_customer_orders_once() {
        let text = format!(
            "{PEOPLE}A1,Acme Ltd,ops@acme.example,pro,12,1 Mill Lane,York,YO1 7HH,Tom,Baker,tom@acme.example,0161 496 0001,Yealink T54W,80:5E:C0:12:34:56\n\
             A1,,,,,,,,Ann,Lee,ann@acme.example,,Yealink T54W,\n\
             A1,,,,,,,,Bob,Ray,bob@acme.example,,Yealink T31P,\n\
             A1,,,,,,,,Cy,Ng,cy@acme.example,,yealink t54w,\n\
             H1,Bolt Ltd,,hardware,12,1 High St,Leeds,LS1 4AP,,,,,Yealink T31P,\n"
        );
        let (_d, plan) = plan_of(&[("people.csv", &text)]);
        let tasks: Vec<(u32, Option<Task>)> =
            plan.rows.iter().map(|r| (r.row_no, r.task)).collect();
        use Task::*;
        // Customers first, then users, numbers, devices and orders, as any job is ordered.
        assert_eq!(
            tasks,
            vec![
                (2, Some(Customer)),
                (6, Some(Customer)),
                (2, Some(User)),
                (3, Some(User)),
                (4, Some(User)),
                (5, Some(User)),
                (2, Some(Number)),
                (2, Some(Device)),
                (3, Some(Order)),
                (4, Some(Order)),
                (5, Some(Order)),
                (6, Some(Order)),
            ]
        );
        assert_eq!(plan.source_rows(), 5);
        let id = |row, task| {
            plan.rows
                .iter()
                .position(|r| r.row_no == row && r.task == Some(task))
                .unwrap() as i64
                + 1
        };
        let r = |row, task| &plan.rows[id(row, task) as usize - 1];
        // Ann's user waits for Acme, made on Tom's row; Tom's number and phone for his user.
        assert_eq!(r(3, User).deps, vec![id(2, Customer)]);
        assert_eq!(r(2, Number).deps, vec![id(2, Customer), id(2, User)]);
        assert_eq!(r(2, Device).deps, vec![id(2, Customer), id(2, User)]);
        match &r(3, Order).work {
            Some(Work::AddOrder {
                customer,
                items,
                delivery,
                order_ref,
            }) => {
                assert_eq!(customer, &Sel::Row(id(2, Customer)));
                assert_eq!(
                    items,
                    &vec![
                        ("Yealink T54W".to_string(), 2),
                        ("Yealink T31P".to_string(), 1)
                    ]
                );
                assert_eq!(
                    delivery.as_ref().map(|a| a.postcode.as_str()),
                    Some("YO1 7HH")
                );
                assert_eq!(order_ref, &None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            (r(4, Order).lead, r(5, Order).lead),
            (Some(id(3, Order)), Some(id(3, Order)))
        );
        match &r(6, Order).work {
            Some(Work::AddOrder {
                customer, items, ..
            }) => {
                assert_eq!(customer, &Sel::Row(id(6, Customer)));
                assert_eq!(items, &vec![("Yealink T31P".to_string(), 1)]);
            }
            other => panic!("{other:?}"),
        }
    }

    /// A customer's order is placed whole: while one of the rows ordering for it is invalid,
    /// the others' phones wait (their other tasks run).
    #[test]
    fn an_invalid_row_holds_its_customers_order_not_its_other_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.csv");
        let text = format!(
            "{PEOPLE}A1,Acme Ltd,ops@acme.example,pro,12,1 Mill Lane,York,YO1 7HH,Tom,Baker,tom@acme.example,,Yealink T54W,\n\
             A1,,,,,,,,Ann,Lee,not an email,,Yealink T54W,\n"
        );
        std::fs::write(&path, text).unwrap();
        let (inputs, rows) = read(&[path], None, None);
        let plan = build(&inputs, rows);
        let states: Vec<(u32, Option<Task>, RowState)> = plan
            .rows
            .iter()
            .map(|r| (r.row_no, r.task, r.state))
            .collect();
        assert_eq!(
            states,
            vec![
                (2, Some(Task::Customer), RowState::Pending),
                (3, None, RowState::Invalid),
                (2, Some(Task::User), RowState::Pending),
                (2, Some(Task::Order), RowState::Invalid),
            ]
        );
        let held = plan.rows.last().unwrap().detail.clone().unwrap();
        assert!(
            held.starts_with("row 3, which also orders a phone for this customer, is invalid"),
            "{held}"
        );
        let shown = plan.expansions();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(shown[1].calls, vec![TaskCalls::Invalid(None)]);
    }

    fn plan_of(csvs: &[(&str, &str)]) -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (name, text) in csvs {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            files.push(p);
        }
        let (inputs, rows) = read(&files, None, None);
        assert_eq!(inputs.errors(), 0, "{:?}", inputs.outcome.findings.items());
        (dir, build(&inputs, rows))
    }

    fn works(plan: &Plan) -> Vec<Work> {
        plan.rows.iter().map(|r| r.work.clone().unwrap()).collect()
    }

    #[test]
    fn users_wait_for_their_customer_and_numbers_for_their_user() {
        let (_d, plan) = plan_of(&[
            (
                "numbers.csv",
                "Customer,Number,User Email\nACME,01632 960001,ann@acme.example\n",
            ),
            (
                "users.csv",
                "Customer,First Name,Last Name,Email\nACME,Ann,Lee,ann@acme.example\n",
            ),
            (
                "customers.csv",
                "Ref,Company Name,Email,Plan,Contract Months\nACME,Acme Ltd,it@acme.example,pro,12\n",
            ),
        ]);
        let w = works(&plan);
        assert!(matches!(w[0], Work::AddCustomer { .. }));
        assert!(matches!(
            w[1],
            Work::AddUser {
                customer: Sel::Row(1),
                ..
            }
        ));
        match &w[2] {
            Work::AddNumber {
                customer,
                number,
                allocate_to,
            } => {
                assert_eq!(customer, &Sel::Row(1));
                assert_eq!(number, "+441632960001");
                assert_eq!(allocate_to, &Some(Sel::Row(2)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plan.rows[2].deps, vec![1, 2]);
        assert_eq!(
            plan.calls(),
            vec![
                (c::Operation::AddCustomer, 1),
                (c::Operation::AddCustomerUser, 1),
                (c::Operation::AddCustomerNumber, 1),
                (c::Operation::AllocateNumber, 1)
            ]
        );
    }

    #[test]
    fn rows_sharing_an_order_ref_are_one_order() {
        let (_d, plan) = plan_of(&[(
            "orders.csv",
            "Order Ref,Customer,Product,Quantity\nO1,cus_1,Yealink T54W,2\nO1,cus_1,Yealink W73P,1\nO2,cus_1,Yealink T54W,1\n",
        )]);
        assert_eq!(plan.rows[1].lead, Some(1));
        let lead: Work = plan.rows[0].work.clone().unwrap();
        match lead {
            Work::AddOrder {
                items, customer, ..
            } => {
                assert_eq!(customer, Sel::Existing("cus_1".into()));
                assert_eq!(
                    items,
                    vec![("Yealink T54W".into(), 2), ("Yealink W73P".into(), 1)]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(plan.rows[2].work.is_some());
    }

    #[test]
    fn an_order_with_an_invalid_row_is_not_placed_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("orders.csv");
        std::fs::write(
            &p,
            "Order Ref,Customer,Product,Quantity\nO1,cus_1,Yealink T54W,2\nO1,cus_1,Yealink W73P,500\nO2,cus_1,Yealink T54W,1\n",
        )
        .unwrap();
        let (inputs, rows) = read(&[p], None, None);
        let plan = build(&inputs, rows);
        let states: Vec<RowState> = plan.rows.iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            [RowState::Invalid, RowState::Invalid, RowState::Pending]
        );
        assert!(plan.rows[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("row 3 of order O1"));
    }

    /// Issue 12: every row naming a company name two Customers rows add is invalid, not only
    /// the first (the others went looking for the name in the account).
    #[test]
    fn every_row_naming_an_ambiguous_customer_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("customers.csv");
        let u = dir.path().join("users.csv");
        std::fs::write(
            &c,
            "Company Name,Email,Plan,Contract Months
Acme Ltd,a@a.example,pro,12
Acme Ltd,b@a.example,pro,12
",
        )
        .unwrap();
        std::fs::write(
            &u,
            "Customer,First Name,Last Name,Email
Acme Ltd,Ann,Lee,ann@a.example
acme ltd,Bob,Hill,bob@a.example
Acme Ltd,Cy,Moss,cy@a.example
",
        )
        .unwrap();
        let (inputs, rows) = read(&[c, u], None, None);
        let users = inputs
            .counts()
            .find(|(.., k, _)| *k == Kind::Users)
            .unwrap();
        assert_eq!((users.3.valid, users.3.invalid), (0, 3));
        let plan = build(&inputs, rows);
        for r in plan.rows.iter().filter(|r| r.sheet == 1) {
            assert_eq!(r.state, RowState::Invalid, "row {}", r.row_no);
            let d = r.detail.as_deref().unwrap();
            assert!(d.contains("company name of 2 Customers rows"), "{d}");
        }
    }

    /// Issue 12: a redirect is part of the schedule, which the API takes whole; alone it was
    /// valid and then sent nothing.
    #[test]
    fn a_redirect_alone_asks_for_the_opening_times() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(
            &p,
            "Customer,User Email,Out Of Hours Redirect\ncus_1,ann@a.example,01632 960001\n",
        )
        .unwrap();
        let (inputs, rows) = read(&[p], Some(Kind::UserSettings), None);
        let plan = build(&inputs, rows);
        assert_eq!(plan.rows[0].state, RowState::Invalid);
        let d = plan.rows[0].detail.as_deref().unwrap();
        assert!(
            d.contains("Open Days is required, since Out Of Hours Redirect"),
            "{d}"
        );
    }

    /// Issue 12: validity comes from the validator's verdicts, not from the findings it keeps
    /// (which are capped): a repeat past the cap is still invalid.
    #[test]
    fn a_repeat_is_invalid_however_many_findings_came_before() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blocked.csv");
        let mut text = String::from("Customer,Number,Note\n");
        // One error per row, past the number of findings kept.
        for i in 0..crate::findings::DEFAULT_KEPT + 10 {
            text.push_str(&format!("cus_1,not a number {i},\n"));
        }
        text.push_str("cus_1,01632 960001,\ncus_1,01632 960001,\n");
        std::fs::write(&p, text).unwrap();
        let (inputs, rows) = read(&[p], Some(Kind::BlockedNumbers), None);
        let plan = build(&inputs, rows);
        let last: Vec<RowState> = plan.rows.iter().rev().take(2).map(|r| r.state).collect();
        assert_eq!(last, [RowState::Invalid, RowState::Pending]);
    }
}
