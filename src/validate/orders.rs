//! The Orders sheet: hardware ordered for a customer, one product per row; rows sharing an
//! Order Ref are one order, so they must agree on its customer and delivery address.

use super::op::Op;
use super::{fields, key, Cx};
use crate::schema::Field;

const DELIVERY: [Field; 5] = [
    Field::DeliveryLine1,
    Field::DeliveryLine2,
    Field::DeliveryTown,
    Field::DeliveryCounty,
    Field::DeliveryPostcode,
];

impl Cx<'_> {
    pub(super) fn order(&mut self) -> Option<Op> {
        let order_ref = self.require(
            Field::OrderRef,
            " (rows with the same Order Ref make one order)",
        );
        let customer = self.customer_ref();
        self.require(
            Field::Product,
            " (a product id, or brand and model such as Yealink T54W)",
        );
        let quantity = match self.require(Field::Quantity, "") {
            Some(_) => self.choice(Field::Quantity, fields::quantity),
            None => None,
        };
        self.address(
            Field::DeliveryLine1,
            Field::DeliveryTown,
            Field::DeliveryPostcode,
            &[Field::DeliveryLine2, Field::DeliveryCounty],
            ", since part of the delivery address is given",
        );
        if let (Some(order_ref), Some(customer)) = (order_ref, customer) {
            self.same_order(order_ref, customer);
        }
        if !self.wants_op() {
            return None;
        }
        Some(Op::OrderLine {
            customer: self.text(Field::Customer)?,
            order_ref: Some(order_ref?.to_string()),
            item: (self.text(Field::Product)?, quantity?),
            delivery: self.address_of(DELIVERY),
        })
    }

    /// The first row of an Order Ref fixes its customer and delivery address; a later row
    /// that differs is an error naming that row.
    fn same_order(&mut self, order_ref: &str, customer: super::Key) {
        let mut parts = [""; 5];
        for (i, f) in DELIVERY[..4].iter().enumerate() {
            parts[i] = self.get(*f).unwrap_or("");
        }
        parts[4] = self.v.norm.get(Field::DeliveryPostcode);
        let delivery = key(&parts);
        let loc = self.loc();
        let order_key = key(&[order_ref]);
        let clash = match self.v.orders.get(&order_key) {
            None => {
                self.v.orders.insert(order_key, (customer, delivery, loc));
                None
            }
            Some((c, _, first)) if *c != customer => {
                Some((Field::Customer, "for another customer", *first))
            }
            Some((_, d, first)) if *d != delivery => Some((
                Field::DeliveryLine1,
                "with another delivery address",
                *first,
            )),
            Some(_) => None,
        };
        if let Some((f, what, first)) = clash {
            let c = self.col(f);
            let value = c.map_or("", |c| self.row.get(c)).to_string();
            let at = self.v.describe(first, self.sheet_index);
            self.err_at(
                c,
                &value,
                format!("Order Ref {order_ref:?} is {what} on {at}: rows of one order share its customer and delivery address"),
            );
        }
    }
}
