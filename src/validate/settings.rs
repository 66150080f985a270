//! The User Settings sheet: a user's call settings and opening schedule, each changed only
//! where a cell is filled.

use super::op::Op;
use super::{fields, Cx};
use crate::contract as c;
use crate::schema::Field;

impl Cx<'_> {
    pub(super) fn settings(&mut self) -> Option<Op> {
        self.customer_ref();
        self.require(Field::UserEmail, " to say whose settings these are");
        self.email_field(Field::UserEmail);
        let mut call = c::CallSettings::default();
        for (f, slot) in [
            (Field::RejectAnonymous, &mut call.reject_anonymous),
            (Field::CallWaiting, &mut call.call_waiting),
            (Field::Voicemail, &mut call.voicemail),
        ] {
            *slot = self.choice(f, fields::yes_no).flatten();
        }
        let days = match self.get(Field::OpenDays) {
            Some(_) => self.choice(Field::OpenDays, fields::days),
            None => None,
        };
        let times = self.get(Field::OpenDays).is_some()
            || self.get(Field::OpenTime).is_some()
            || self.get(Field::CloseTime).is_some();
        let redirect = self.get(Field::Redirect).is_some();
        if redirect {
            self.normalise_phone(Field::Redirect, fields::phone);
        }
        // The redirect is part of the schedule: the API takes it only with the opening times.
        let schedule = times || redirect;
        if schedule {
            self.opening_times(if times {
                ", since opening times are given"
            } else {
                ", since Out Of Hours Redirect is given (it is part of the opening schedule)"
            });
        }
        let call = (call != c::CallSettings::default()).then_some(call);
        if call.is_none() && !schedule && !redirect && self.errors == 0 {
            self.warn_at(
                None,
                "",
                "the row changes nothing: every setting is blank".into(),
            );
        }
        if !self.wants_op() {
            return None;
        }
        let schedule = match days {
            Some(days) => Some(c::ScheduleSettings {
                days: fields::day_names(days),
                open: self.clean(Field::OpenTime)?,
                close: self.clean(Field::CloseTime)?,
                out_of_hours_redirect: self.clean(Field::Redirect),
            }),
            None => None,
        };
        Some(Op::UserSettings {
            customer: self.text(Field::Customer)?,
            user: self.text(Field::UserEmail)?,
            call,
            schedule,
        })
    }

    /// Open Days, Open Time and Close Time go together, and the day must close after it opens.
    fn opening_times(&mut self, because: &str) {
        let days = self.get(Field::OpenDays).is_some();
        if !days {
            self.require(Field::OpenDays, because);
        }
        let because = if days {
            ", since opening days are given"
        } else {
            because
        };
        let open = self.time(Field::OpenTime, because);
        let close = self.time(Field::CloseTime, because);
        if let (Some(o), Some(c)) = (open, close) {
            if c <= o {
                let col = self.col(Field::CloseTime);
                let v = self.v.norm.get(Field::CloseTime).to_string();
                self.err_at(
                    col,
                    &v,
                    format!(
                        "Close Time {v} is not after Open Time {}",
                        self.v.norm.get(Field::OpenTime)
                    ),
                );
            }
        }
    }

    fn time(&mut self, f: Field, because: &str) -> Option<u32> {
        self.require(f, because)?;
        let c = self.col(f)?;
        let raw = self.cell(f);
        let mut out = std::mem::take(self.v.norm.slot(f));
        let r = fields::time(raw, &mut out);
        *self.v.norm.slot(f) = out;
        match r {
            Ok(m) => Some(m),
            Err(m) => {
                self.err_at(Some(c), raw, m);
                None
            }
        }
    }
}
