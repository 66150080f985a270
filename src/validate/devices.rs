//! The Devices sheet: a phone the customer has, assigned to one of its users by MAC address.

use super::op::Op;
use super::{fields, key, Cx, Unique};
use crate::schema::Field;

impl Cx<'_> {
    pub(super) fn device(&mut self) -> Option<Op> {
        self.customer_ref();
        self.require(Field::UserEmail, " to say whose device it is");
        self.email_field(Field::UserEmail);
        self.require(
            Field::Product,
            " (a product id, or brand and model such as Yealink T54W)",
        );
        self.require(Field::Mac, "");
        if self.normalise(Field::Mac, fields::mac) {
            let mac = self.v.norm.get(Field::Mac);
            if !mac.is_empty() {
                let k = key(&[mac]);
                self.unique(Unique::Mac, k, Field::Mac, |n| {
                    format!("MAC address {} is given twice", n.get(Field::Mac)).into()
                });
            }
        }
        if !self.wants_op() {
            return None;
        }
        Some(Op::AddDevice {
            customer: self.text(Field::Customer)?,
            user: self.text(Field::UserEmail)?,
            product: self.text(Field::Product)?,
            mac: self.clean(Field::Mac)?,
        })
    }
}
