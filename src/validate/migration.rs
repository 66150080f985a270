//! The Migration sheet: one row per person, as another provider's export has them. A row
//! stands for its customer (given by the first row naming it, by Customer Ref or, without one,
//! Company Name), its user, its number and its device: assigned by MAC, or ordered in the
//! customer's one order.
//!
//! What no single row can tell is checked here as rows arrive: later rows of a customer agree
//! with the first where they fill its columns, and a row ordering a phone has an address to
//! deliver it to. A number, a MAC or a user email given twice is a repeat like any other sheet's,
//! named with both rows when the job's rows have all been seen.

use super::op::{Person, PersonDevice};
use super::{fields, key, pair, Cx, Key, Loc, Unique};
use crate::contract as c;
use crate::schema::Field;

/// The company columns: the first row of a customer gives them, later rows agree or leave
/// them blank.
const COMPANY: [Field; 11] = [
    Field::CompanyName,
    Field::ContactName,
    Field::Email,
    Field::Phone,
    Field::Plan,
    Field::ContractMonths,
    Field::Line1,
    Field::Line2,
    Field::Town,
    Field::County,
    Field::Postcode,
];

const ADDRESS: [Field; 5] = [
    Field::Line1,
    Field::Line2,
    Field::Town,
    Field::County,
    Field::Postcode,
];

/// A customer of the Migration sheet, as its first row gives it.
pub(super) struct Company {
    at: Loc,
    /// Each company column's value as a key that compares as the API would see it (a phone
    /// number in normal form, a plan parsed), [`BLANK`] where the first row leaves it blank.
    values: [Key; COMPANY.len()],
    /// Whether the first row's company columns are valid: when not, every row of the customer
    /// waits for that row to be fixed.
    valid: bool,
    has_address: bool,
    /// How the rows name the customer: its Customer Ref, else its Company Name.
    name: String,
    reference: Option<String>,
    /// Built for a job, when valid.
    new: Option<c::NewCustomer>,
}

/// A company column left blank. Keys are hashes of text, so a cell's key is not 0 but by a
/// chance of one in 2^64.
const BLANK: Key = 0;

/// User emails are one key space across the Migration sheet: a person is one row.
fn person_key(email: &str) -> Key {
    pair(key(&["\u{1}migration user"]), key(&[email]))
}

impl Cx<'_> {
    pub(super) fn migration(&mut self) -> Option<Box<Person>> {
        let reference = self.get(Field::Ref);
        let name = self.get(Field::CompanyName);
        let company = match (reference, name) {
            (Some(r), _) => Some(key(&[r])),
            // Without a Ref, a row joins the customer its company name was first given to,
            // Ref or not.
            (None, Some(n)) => Some(
                self.v
                    .company_names
                    .get(&key(&[n]))
                    .copied()
                    .unwrap_or_else(|| key(&[n])),
            ),
            (None, None) => {
                self.require(
                    Field::CompanyName,
                    " (or a Customer Ref): it says whose row this is",
                );
                None
            }
        };

        let before = self.errors;
        self.email_field(Field::Email);
        self.normalise_phone(Field::Phone, fields::phone);
        let plan = match self.get(Field::Plan) {
            Some(_) => self.choice(Field::Plan, fields::plan),
            None => None,
        };
        let months = match self.get(Field::ContractMonths) {
            Some(_) => self.choice(Field::ContractMonths, fields::contract_months),
            None => None,
        };
        let first = company.is_some_and(|k| !self.v.companies.contains_key(&k));
        // The first row gives the address whole; a later row may repeat any part of it.
        let has_address = if first || company.is_none() {
            self.address(
                Field::Line1,
                Field::Town,
                Field::Postcode,
                &[Field::Line2, Field::County],
                ", since part of the address is given",
            )
        } else {
            self.normalise(Field::Postcode, fields::postcode);
            false
        };
        if first {
            let k = key(&[name.unwrap_or("")]);
            self.adding_customer(plan, has_address, name.map(|_| k));
            if let Some(r) = reference {
                self.unique(Unique::Ref, key(&[r]), Field::Ref, |_| {
                    "this Customer Ref is used twice".into()
                });
            }
        }
        let values = self.company_values(plan, months);
        let company_valid = self.errors == before;

        let user = self.person_user();
        let number = match self.get(Field::Number) {
            Some(_) if self.normalise_phone(Field::Number, fields::uk_number) => {
                let n = self.v.norm.get(Field::Number);
                self.unique(Unique::NumberAdded, key(&[n]), Field::Number, |n| {
                    format!("{} is given twice", n.get(Field::Number)).into()
                });
                true
            }
            Some(_) | None => false,
        };
        let device = self.person_device(user.is_some());

        let company = company?;
        if first {
            let made = Company {
                at: self.loc(),
                values,
                valid: company_valid,
                has_address,
                name: reference.or(name).unwrap_or_default().to_string(),
                reference: reference.map(str::to_string),
                new: (self.v.build_ops && company_valid).then(|| c::NewCustomer {
                    company_name: self.text(Field::CompanyName).unwrap_or_default(),
                    contact_name: self.text(Field::ContactName),
                    email: self.text(Field::Email),
                    phone: self.clean(Field::Phone),
                    plan,
                    contract_months: months,
                    address: self.address_of(ADDRESS),
                }),
            };
            if let Some(n) = name {
                self.v.company_names.entry(key(&[n])).or_insert(company);
            }
            self.v.companies.insert(company, made);
        } else {
            self.agree(company, &values);
        }
        let given = &self.v.companies[&company];
        let (given_at, given_valid, given_address) = (given.at, given.valid, given.has_address);
        let from = self.sheet_index;
        if !first && !given_valid {
            let col = self.col(Field::Ref).filter(|_| reference.is_some());
            let col = col.or(self.col(Field::CompanyName));
            let value = reference.or(name).unwrap_or("").to_string();
            let at = self.v.describe(given_at, from);
            self.err_at(
                col,
                &value,
                format!("this customer is given on {at}, whose company columns are invalid: fix that row, and this one runs with it"),
            );
        }
        if matches!(device, Some(Ordered)) && !given_address {
            let col = self.col(Field::Product);
            let value = self.cell(Field::Product).to_string();
            let message = if first {
                "a Device without a MAC Address is ordered and delivered to the customer's address, which this row does not give: add the address, or the MAC of a phone the person has".to_string()
            } else {
                format!(
                    "a Device without a MAC Address is ordered and delivered to the customer's address, which {} (the customer's first row) does not give: add the address there, or the MAC of a phone the person has",
                    self.v.describe(given_at, from)
                )
            };
            self.err_at(col, &value, message);
        }
        if !first && user.is_none() && !number && device.is_none() {
            let at = self.v.describe(given_at, from);
            let col = self.col(Field::FirstName).or(self.col(Field::CompanyName));
            self.err_at(
                col,
                "",
                format!("this row adds nothing: its customer is given on {at}, and it has no user, Number or Device: remove the row, or fill them in"),
            );
        }
        if !self.wants_op() {
            return None;
        }
        let given = &self.v.companies[&company];
        let person = Person {
            customer: given.name.clone(),
            reference: given.reference.clone(),
            new_customer: given.new.clone()?,
            number: number.then(|| self.clean(Field::Number)).flatten(),
            device: match device {
                None => None,
                Some(Assigned) => Some(PersonDevice::Assigned {
                    product: self.text(Field::Product)?,
                    mac: self.clean(Field::Mac)?,
                }),
                Some(Ordered) => Some(PersonDevice::Ordered {
                    product: self.text(Field::Product)?,
                }),
            },
            user: user.flatten(),
        };
        Some(Box::new(person))
    }

    /// The company columns of this row as they compare across rows. Keys, not text: a
    /// large export is read without an allocation a cell.
    fn company_values(&self, plan: Option<c::Plan>, months: Option<u32>) -> [Key; COMPANY.len()] {
        COMPANY.map(|f| {
            let Some(raw) = self.get(f) else {
                return BLANK;
            };
            match (f, plan, months) {
                (Field::Phone | Field::Postcode, ..) => key(&[self.v.norm.get(f)]),
                (Field::Plan, Some(p), _) => key(&[match p {
                    c::Plan::Pro => "pro",
                    c::Plan::Hardware => "hardware",
                }]),
                (Field::ContractMonths, _, Some(m)) => pair(key(&["months"]), m as Key),
                _ => key(&[raw]),
            }
        })
    }

    /// A later row of a customer fills its company columns as the first row did, or leaves
    /// them blank.
    fn agree(&mut self, company: Key, values: &[Key; COMPANY.len()]) {
        let given = &self.v.companies[&company];
        let clashes: Vec<(Field, bool)> = COMPANY
            .iter()
            .zip(values.iter().zip(&given.values))
            .filter(|(_, (mine, first))| **mine != BLANK && mine != first)
            .map(|(f, (_, first))| (*f, *first == BLANK))
            .collect();
        if clashes.is_empty() {
            return;
        }
        let at = self.v.describe(given.at, self.sheet_index);
        for (f, blank_there) in clashes {
            let header = self.header(f);
            let value = self.cell(f).to_string();
            let message = if blank_there {
                format!("{header} is blank on {at}, which gives this customer: give it there, or leave it blank here")
            } else {
                format!("{header} differs from {at}, which gives this customer: make them agree, or leave it blank here")
            };
            self.err_at(self.col(f), &value, message);
        }
    }

    /// The row's user: None when the row has none (all three of First Name, Last Name and
    /// User Email blank); Some(None) when it has one that is invalid or not wanted.
    fn person_user(&mut self) -> Option<Option<c::NewUser>> {
        let fields = [Field::FirstName, Field::LastName, Field::UserEmail];
        if fields.iter().all(|f| self.get(*f).is_none()) {
            if let Some(v) = self.get(Field::UserType) {
                let col = self.col(Field::UserType);
                self.err_at(
                    col,
                    v,
                    "User Type is given, but the row has no user (First Name, Last Name and User Email are blank)".into(),
                );
            }
            return None;
        }
        let because = " for the row's user (a row without a user leaves First Name, Last Name and User Email all blank)";
        let first = self.require(Field::FirstName, because);
        let last = self.require(Field::LastName, because);
        let email = self.require(Field::UserEmail, because);
        self.email_field(Field::UserEmail);
        let user_type = match self.get(Field::UserType) {
            Some(_) => self.choice(Field::UserType, fields::user_type),
            None => Some(c::UserType::Standard),
        };
        if let Some(e) = email {
            self.unique(Unique::UserEmail, person_key(e), Field::UserEmail, |_| {
                "this User Email is given twice: a person is one row".into()
            });
        }
        Some(
            (self.wants_op())
                .then(|| {
                    Some(c::NewUser {
                        first_name: first?.to_string(),
                        last_name: last?.to_string(),
                        email: email?.to_string(),
                        user_type: user_type?,
                    })
                })
                .flatten(),
        )
    }

    /// The row's phone, when it has one: assigned to the user by its MAC, or ordered.
    fn person_device(&mut self, has_user: bool) -> Option<Device> {
        let mac = self.get(Field::Mac);
        if self.get(Field::Product).is_none() {
            if mac.is_some() {
                self.require(
                    Field::Product,
                    " with a MAC Address (the phone's brand and model, or its product id)",
                );
            }
            return None;
        }
        let Some(mac) = mac else {
            return Some(Ordered);
        };
        if self.normalise(Field::Mac, fields::mac) {
            let k = key(&[self.v.norm.get(Field::Mac)]);
            self.unique(Unique::Mac, k, Field::Mac, |n| {
                format!("MAC address {} is given twice", n.get(Field::Mac)).into()
            });
        }
        if !has_user {
            let col = self.col(Field::Mac);
            self.err_at(
                col,
                mac,
                "a phone with a MAC Address is assigned to the row's user, and this row has none: give First Name, Last Name and User Email, or leave the MAC blank to order the phone".into(),
            );
        }
        Some(Assigned)
    }
}

/// What the row does with its phone, before its values are taken.
#[derive(Clone, Copy)]
enum Device {
    Assigned,
    Ordered,
}
use Device::{Assigned, Ordered};

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use crate::findings::Severity;
    use crate::schema::Kind;

    const HEAD: &str = "Customer Ref,Company Name,Company Email,Plan,Contract Months,Address Line 1,Town,Postcode,First Name,Last Name,User Email,Number,Device,MAC Address\n";

    fn check(rows: &str) -> Outcome {
        super::super::tests::validate_as(Kind::Migration, &format!("{HEAD}{rows}"))
    }

    /// (row, column header, message) of each error.
    fn errors(out: &Outcome) -> Vec<(u32, String, String)> {
        out.findings
            .items()
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| {
                (
                    f.row.unwrap_or(0),
                    f.header.as_deref().unwrap_or("").to_string(),
                    f.message.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn later_rows_of_a_customer_may_leave_its_columns_blank_but_not_differ() {
        let out = check(
            "A1,Acme Ltd,ops@acme.example,pro,12,1 Mill Lane,York,YO1 7HH,Tom,Baker,tom@acme.example,0161 496 0001,Yealink T54W,\n\
             A1,,,,,,,,Ann,Lee,ann@acme.example,0161 496 0002,,\n\
             A1,ACME LTD,,PRO,12 ,,,yo17hh,Bob,Ray,bob@acme.example,,,\n\
             A1,Acme Ltd,,hardware,24,,,,Cy,Ng,cy@acme.example,,,\n",
        );
        let errors = errors(&out);
        // Row 4 says the same in other spellings; row 5 differs on two columns.
        assert_eq!(
            errors,
            vec![
                (5, "Plan".into(), "Plan differs from row 2, which gives this customer: make them agree, or leave it blank here".into()),
                (5, "Contract Months".into(), "Contract Months differs from row 2, which gives this customer: make them agree, or leave it blank here".into()),
            ],
        );
        let c = &out.sheets[0].3;
        assert_eq!((c.rows, c.valid, c.invalid), (4, 3, 1));
    }

    #[test]
    fn a_number_a_mac_or_an_email_given_twice_names_both_rows() {
        let out = check(
            "A1,Acme Ltd,ops@acme.example,pro,12,1 Mill Lane,York,YO1 7HH,Tom,Baker,tom@acme.example,0161 496 0001,Yealink T54W,80:5E:C0:12:34:56\n\
             A1,,,,,,,,Ann,Lee,TOM@acme.example,+44 161 496 0001,Yealink T54W,805ec0123456\n",
        );
        let errors = errors(&out);
        let said = |col: &str, what: &str| {
            (
                3,
                col.to_string(),
                format!("{what}, also on row 2: remove one of the two"),
            )
        };
        assert!(
            errors.contains(&said(
                "User Email",
                "this User Email is given twice: a person is one row"
            )),
            "{errors:#?}"
        );
        assert!(
            errors.contains(&said("Number", "+441614960001 is given twice")),
            "{errors:#?}"
        );
        assert!(
            errors.contains(&said(
                "MAC Address",
                "MAC address 805EC0123456 is given twice"
            )),
            "{errors:#?}"
        );
        assert_eq!(errors.len(), 3, "{errors:#?}");
    }

    #[test]
    fn a_phone_is_ordered_only_with_an_address_and_assigned_only_to_a_user() {
        let out = check(
            "A1,Acme Ltd,ops@acme.example,pro,12,,,,Tom,Baker,tom@acme.example,,Yealink T54W,\n\
             H1,Bolt Ltd,,hardware,12,1 High St,Leeds,LS1 4AP,,,,,Yealink T54W,80:5E:C0:12:34:57\n\
             H1,,,,,,,,,,,,,\n\
             A1,,,,,,,,Jo,,jo@acme.example,,,\n",
        );
        let errors = errors(&out);
        let rows: Vec<(u32, &str)> = errors.iter().map(|(r, c, _)| (*r, c.as_str())).collect();
        assert_eq!(
            rows,
            vec![
                (2, "Device"),
                (3, "MAC Address"),
                (4, "First Name"),
                (5, "Last Name")
            ],
            "{errors:#?}"
        );
        assert!(
            errors[0].2.contains("delivered to the customer's address"),
            "{errors:#?}"
        );
        assert!(errors[1].2.contains("this row has none"), "{errors:#?}");
        let out = check(
            "H1,Bolt Ltd,,hardware,12,1 High St,Leeds,LS1 4AP,,,,,Yealink T54W,\n\
             H1,,,,,,,,,,,,,\n\
             H1,Bolt Ltd,,,,,,,,,,,,\n",
        );
        let errors = super::tests::errors(&out);
        let rows: Vec<u32> = errors.iter().map(|e| e.0).collect();
        assert_eq!(rows, vec![3, 4], "{errors:#?}");
        assert!(
            errors.iter().all(|e| e
                .2
                .starts_with("this row adds nothing: its customer is given on row 2")),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_customer_whose_first_row_is_invalid_holds_its_other_rows() {
        let out = check(
            "A1,Acme Ltd,not an email,pro,12,1 Mill Lane,York,YO1 7HH,Tom,Baker,tom@acme.example,,,\n\
             A1,,,,,,,,Ann,Lee,ann@acme.example,,,\n\
             ,Acme Ltd,,,,,,,Bob,Ray,bob@acme.example,,,\n",
        );
        let errors = errors(&out);
        let rows: Vec<u32> = errors.iter().map(|e| e.0).collect();
        assert_eq!(rows, vec![2, 3, 4], "{errors:#?}");
        // Row 4 has no Ref: its company name finds the customer row 2 gives.
        assert!(
            errors[2]
                .2
                .contains("given on row 2, whose company columns are invalid"),
            "{errors:#?}"
        );
    }
}
