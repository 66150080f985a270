//! The work of each kind of row: one method per action (and per undo step), each built from
//! the row's shared ways to resolve names, create, write and delete. A new action's send
//! method goes here, beside its row in [`crate::actions`].

use super::*;

impl RowCx<'_> {
    // --- The work ------------------------------------------------------------------------------

    /// Runs the row's work: one method per kind of work, each sharing the row's ways to
    /// create, write and delete.
    pub(super) async fn dispatch(&mut self, work: &Work) -> Step<Outcome> {
        match work {
            Work::AddCustomer { new } => self.add_customer(new).await,
            Work::UpdateCustomer { customer, changes } => {
                self.update_customer(customer, changes).await
            }
            Work::RegradeContract { customer, months } => {
                self.regrade_contract(customer, months).await
            }
            Work::UpgradePlan { customer } => self.upgrade_plan(customer).await,
            Work::DeleteCustomer { customer } => self.delete_customer(customer).await,
            Work::AddUser { customer, new } => self.add_user(customer, new).await,
            Work::UpdateUser {
                customer,
                user,
                changes,
            } => self.update_user(customer, user, changes).await,
            Work::DeleteUser { customer, user } => self.delete_user(customer, user).await,
            Work::ResendActivation { customer, user } => {
                self.send_email(
                    O::ResendActivation,
                    ApiRequest::resend_activation,
                    customer,
                    user,
                )
                .await
            }
            Work::ResetPassword { customer, user } => {
                self.send_email(
                    O::RequestPasswordReset,
                    ApiRequest::request_password_reset,
                    customer,
                    user,
                )
                .await
            }
            Work::AddNumber {
                customer,
                number,
                allocate_to,
            } => self.add_number(customer, number, allocate_to).await,
            Work::AllocateNumber {
                customer,
                number,
                user,
            } => self.allocate_number(customer, number, user).await,
            Work::DeallocateNumber { customer, number } => {
                self.deallocate_number(customer, number).await
            }
            Work::AddBlocked { customer, new } => self.add_blocked(customer, new).await,
            Work::UpdateBlocked {
                customer,
                number,
                changes,
            } => self.update_blocked(customer, number, changes).await,
            Work::DeleteBlocked { customer, number } => self.delete_blocked(customer, number).await,
            Work::AddDevice {
                customer,
                user,
                product,
                mac,
            } => self.add_device(customer, user, product, mac).await,
            Work::AddOrder {
                customer,
                items,
                delivery,
                order_ref,
            } => self.add_order(customer, items, delivery, order_ref).await,
            Work::UserSettings {
                customer,
                user,
                call,
                schedule,
            } => self.user_settings(customer, user, call, schedule).await,
            Work::AddPartnerUser { new } => self.add_partner_user(new).await,
            Work::UpdatePartnerUser {
                partner_user,
                changes,
            } => self.update_partner_user(partner_user, changes).await,
            Work::DeletePartnerUser { partner_user } => {
                self.delete_partner_user(partner_user).await
            }
            Work::Remove {
                target,
                wrote,
                force,
            } => self.remove(target, wrote, *force).await,
            Work::Restore {
                target,
                wrote,
                before,
                force,
            } => self.restore(target, wrote, before, *force).await,
            Work::Reallocate(r) => self.reallocate(r).await,
        }
    }

    pub(super) async fn add_customer(&mut self, new: &c::NewCustomer) -> Step<Outcome> {
        let entity = Entity {
            key: IdKind::Customer,
            claim: Claim::Customer {
                company: &new.company_name,
            },
            what: Natural::Customer(new),
            label: "a customer with this name and email",
            list_what: "list the account's customers",
        };
        let req = ApiRequest::add_customer(new);
        let (outcome, made) = step!(
            self.create_once(
                entity,
                true,
                |found: &str| {
                    let changes = c::CustomerChanges {
                        company_name: None,
                        contact_name: new.contact_name.clone(),
                        email: None,
                        phone: new.phone.clone(),
                        address: new.address.clone(),
                    };
                    ApiRequest::update_customer(found, &changes)
                },
                req,
            )
            .await
        );
        if let Some(id) = made {
            self.e.look.mark_created(&id);
        }
        go(outcome)
    }

    pub(super) async fn update_customer(
        &mut self,
        customer: &Sel,
        changes: &c::CustomerChanges,
    ) -> Step<Outcome> {
        let id = step!(self.customer(customer).await);
        let req = ApiRequest::update_customer(&id, changes);
        self.change(Target::Customer { id }, changes, "update", &req)
            .await
    }

    pub(super) async fn regrade_contract(&mut self, customer: &Sel, months: &u32) -> Step<Outcome> {
        let id = step!(self.customer(customer).await);
        let body = c::ContractChange {
            contract_months: *months,
        };
        let req = ApiRequest::regrade_contract(&id, *months);
        self.change(Target::Customer { id }, &body, "regrade", &req)
            .await
    }

    pub(super) async fn upgrade_plan(&mut self, customer: &Sel) -> Step<Outcome> {
        let id = step!(self.customer(customer).await);
        let req = ApiRequest::upgrade_plan(&id, c::Plan::Pro);
        match self.send("upgrade", &req).await? {
            Sent::Answered(_) => go(SUCCEEDED),
            // Upgrading a customer already on pro is refused (409): after a doubt,
            // that refusal may be our own upgrade. Look.
            Sent::Refused(e) if e.status == Some(409) && self.doubt => {
                match self.e.client.get_customer(&id).await {
                    Ok(cu) if cu.plan == c::Plan::Pro => go(SUCCEEDED),
                    Err(ge) if ge.is_halted() => Err(Stop::Interrupted),
                    _ => failed(&e),
                }
            }
            Sent::Refused(e) => failed(&e),
        }
    }

    pub(super) async fn delete_customer(&mut self, customer: &Sel) -> Step<Outcome> {
        let id = step!(self.customer(customer).await);
        let req = ApiRequest::delete_customer(&id);
        self.delete_kept(Target::Customer { id }, &req).await
    }

    pub(super) async fn add_user(&mut self, customer: &Sel, new: &c::NewUser) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let entity = Entity {
            key: IdKind::User,
            claim: Claim::User {
                customer: &cid,
                email: &new.email,
            },
            what: Natural::User {
                customer: &cid,
                email: &new.email,
            },
            label: "a user with this email",
            list_what: "list the customer's users",
        };
        let req = ApiRequest::add_user(&cid, new);
        let look_first = !self.e.look.is_created(&cid);
        let (outcome, _) = step!(
            self.create_once(
                entity,
                look_first,
                |found: &str| {
                    let changes = c::UserChanges {
                        first_name: Some(new.first_name.clone()),
                        last_name: Some(new.last_name.clone()),
                        email: None,
                        user_type: Some(new.user_type),
                    };
                    ApiRequest::update_user(&cid, found, &changes)
                },
                req,
            )
            .await
        );
        go(outcome)
    }

    pub(super) async fn update_user(
        &mut self,
        customer: &Sel,
        user: &Sel,
        changes: &c::UserChanges,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let uid = step!(self.user(&cid, user).await);
        let req = ApiRequest::update_user(&cid, &uid, changes);
        let user = Target::User {
            customer: cid,
            id: uid,
        };
        self.change(user, changes, "update", &req).await
    }

    pub(super) async fn delete_user(&mut self, customer: &Sel, user: &Sel) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let uid = step!(self.user(&cid, user).await);
        let req = ApiRequest::delete_user(&cid, &uid);
        self.delete_kept(
            Target::User {
                customer: cid,
                id: uid,
            },
            &req,
        )
        .await
    }

    /// An activation email or a password reset: one that may have gone out is never sent
    /// again.
    pub(super) async fn send_email(
        &mut self,
        op: O,
        request: fn(&str, &str) -> ApiRequest,
        customer: &Sel,
        user: &Sel,
    ) -> Step<Outcome> {
        if self.doubt {
            return go((
                RowState::NeedsReview,
                Some(format!(
                    "{} was sent and its answer was lost: the email may have gone out; run the row again only if the user did not get it",
                    op.name()
                )),
            ));
        }
        let cid = step!(self.customer(customer).await);
        let uid = step!(self.user(&cid, user).await);
        match self.send("send", &request(&cid, &uid)).await? {
            Sent::Answered(_) => go(SUCCEEDED),
            Sent::Refused(e) if e.is_outcome_unknown() => go((
                RowState::NeedsReview,
                Some(format!(
                    "{} was sent and its answer was lost: the email may have gone out; run the row again only if the user did not get it",
                    op.name()
                )),
            )),
            Sent::Refused(e) => failed(&e),
        }
    }

    pub(super) async fn add_number(
        &mut self,
        customer: &Sel,
        number: &str,
        allocate_to: &Option<Sel>,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let mut already = false;
        let mut current_user = None;
        let nid = match self.id(IdKind::Number) {
            Some(n) => {
                // Only to skip an allocation already made: not knowing is no reason to end.
                current_user = match self.number(&cid, number, false).await {
                    Ok(Flow::Go(k)) => k.and_then(|k| k.user),
                    Ok(Flow::Ends(_)) | Err(_) => None,
                };
                n
            }
            None => {
                let what = Natural::Number {
                    customer: &cid,
                    number,
                };
                let contested = self.hold(&Claim::Number { number }).await?;
                let existing = if !self.doubt && (contested || !self.e.look.is_created(&cid)) {
                    step!(self.number(&cid, number, contested).await)
                } else {
                    None
                };
                let found = match existing {
                    Some(k) => {
                        step!(self.existing("the number in this customer", &k.id));
                        already = true;
                        current_user = k.user.clone();
                        k
                    }
                    None => {
                        let req = ApiRequest::add_customer_number(&cid, number);
                        step!(self.create("add", &req, &what).await)
                    }
                };
                self.set(IdKind::Number, &found.id);
                if !already {
                    current_user = found.user.clone();
                }
                found.id
            }
        };
        if let Some(user) = allocate_to {
            let uid = step!(self.user(&cid, user).await);
            step!(self.allocate(&cid, number, &nid, &uid, current_user).await);
        }
        go(if already {
            (RowState::AlreadyExisted, None)
        } else {
            (RowState::Succeeded, None)
        })
    }

    pub(super) async fn allocate_number(
        &mut self,
        customer: &Sel,
        number: &str,
        user: &Sel,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let Some(k) = step!(self.number(&cid, number, false).await) else {
            return ends(
                RowState::Failed,
                format!("customer {cid} has no number {number}: add it first (Action add)"),
            );
        };
        self.set(IdKind::Number, &k.id);
        let uid = step!(self.user(&cid, user).await);
        if self.answered.contains("allocate") {
            // This job's allocation, answered before its process died.
            return go(SUCCEEDED);
        }
        let current = if self.doubt { None } else { k.user.clone() };
        if current.as_deref() == Some(uid.as_str()) {
            return go((
                RowState::AlreadyExisted,
                Some("already allocated to this user".into()),
            ));
        }
        step!(self.allocate(&cid, number, &k.id, &uid, current).await);
        go(SUCCEEDED)
    }

    pub(super) async fn deallocate_number(
        &mut self,
        customer: &Sel,
        number: &str,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let Some(k) = step!(self.number(&cid, number, self.doubt).await) else {
            return ends(
                RowState::Failed,
                format!("customer {cid} has no number {number}"),
            );
        };
        self.set(IdKind::Number, &k.id);
        if self.answered.contains("deallocate") {
            // This job's deallocation, answered before its process died.
            return go(SUCCEEDED);
        }
        if k.user.is_none() {
            return go(if self.doubt {
                (RowState::Succeeded, None)
            } else {
                (
                    RowState::AlreadyExisted,
                    Some("the number was not allocated".into()),
                )
            });
        }
        self.keep_before_map(allocation(k.user.as_deref()));
        step!(self.deallocate(&cid, number, &k.id).await);
        go(SUCCEEDED)
    }

    pub(super) async fn deallocate(&mut self, cid: &str, number: &str, nid: &str) -> Step<()> {
        let req = ApiRequest::deallocate_number(cid, nid);
        match self.send("deallocate", &req).await? {
            Sent::Answered(_) => {}
            Sent::Refused(e) if e.status == Some(409) => {
                // Not allocated (any more): a lost answer to our own deallocation.
                match step!(self.number(cid, number, true).await) {
                    Some(n) if n.user.is_none() => {}
                    _ => return failed(&e),
                }
            }
            Sent::Refused(e) => return failed(&e),
        }
        self.e
            .look
            .number_changed(
                cid,
                c::Number {
                    id: nid.to_string(),
                    number: number.to_string(),
                    user_id: None,
                },
            )
            .await;
        self.e.look.remember(
            cid,
            IdKind::Number,
            number,
            Known {
                id: nid.to_string(),
                user: None,
            },
        );
        go(())
    }

    pub(super) async fn add_blocked(
        &mut self,
        customer: &Sel,
        new: &c::NewBlockedNumber,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let entity = Entity {
            key: IdKind::Blocked,
            claim: Claim::Blocked {
                customer: &cid,
                number: &new.number,
            },
            what: Natural::Blocked {
                customer: &cid,
                number: &new.number,
            },
            label: "this blocked number",
            list_what: "list the customer's blocked numbers",
        };
        let req = ApiRequest::add_blocked_number(&cid, new);
        let look_first = !self.e.look.is_created(&cid);
        let (outcome, _) = step!(
            self.create_once(
                entity,
                look_first,
                |found: &str| {
                    let changes = c::BlockedNumberChanges {
                        number: None,
                        direction: Some(new.direction),
                        note: new.note.clone(),
                    };
                    ApiRequest::update_blocked_number(&cid, found, &changes)
                },
                req,
            )
            .await
        );
        go(outcome)
    }

    pub(super) async fn update_blocked(
        &mut self,
        customer: &Sel,
        number: &str,
        changes: &c::BlockedNumberChanges,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let bid = step!(self.blocked_id(&cid, number).await);
        let req = ApiRequest::update_blocked_number(&cid, &bid, changes);
        let blocked = Target::Blocked {
            customer: cid,
            id: bid,
        };
        self.change(blocked, changes, "update", &req).await
    }

    pub(super) async fn delete_blocked(&mut self, customer: &Sel, number: &str) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let bid = step!(self.blocked_id(&cid, number).await);
        let req = ApiRequest::delete_blocked_number(&cid, &bid);
        let blocked = Target::Blocked {
            customer: cid.clone(),
            id: bid,
        };
        let outcome = step!(self.delete_kept(blocked, &req).await);
        self.e.look.forget(&cid, IdKind::Blocked, number);
        go(outcome)
    }

    pub(super) async fn add_device(
        &mut self,
        customer: &Sel,
        user: &Sel,
        product: &str,
        mac: &str,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        if let Some(id) = self.id(IdKind::Device) {
            return go((RowState::Succeeded, Some(format!("created {id}"))));
        }
        let uid = step!(self.user(&cid, user).await);
        let pid = step!(self.product(product).await);
        let body = c::NewDevice {
            product_id: pid,
            mac_address: mac.to_string(),
        };
        let req = ApiRequest::add_device(&cid, &uid, &body);
        // A MAC is unique in the whole account, so the server itself refuses a second
        // device with it: sending again after a lost answer cannot make two. But the
        // contract lists no devices, so a 409 after a doubt cannot say whether the MAC
        // went to this user (our lost answer) or is someone else's.
        for _ in 0..self.e.client.retry_policy().max_attempts {
            match self.send("create", &req).await? {
                Sent::Answered(b) => {
                    if let Ok(d) = client::decode::<c::Created>(O::AddUserDevice, &b) {
                        self.set(IdKind::Device, &d.id);
                    }
                    return go(SUCCEEDED);
                }
                Sent::Refused(e) if e.is_outcome_unknown() => continue,
                Sent::Refused(e) if e.status == Some(409) && self.doubt => {
                    return go((
                        RowState::NeedsReview,
                        Some(format!("an earlier attempt's answer was lost, and the MAC address {mac} is now assigned; the API cannot list devices to say whether to this user: check the user's devices in the portal ({})", e.detail())),
                    ))
                }
                Sent::Refused(e) if e.status == Some(409) => {
                    step!(self.existing(&format!("a device with MAC {mac}"), mac));
                    return go((RowState::AlreadyExisted, Some(e.detail())));
                }
                Sent::Refused(e) => return failed(&e),
            }
        }
        go((
            RowState::NeedsReview,
            Some("the device was sent several times without an answer: check the user's devices in the portal".into()),
        ))
    }

    pub(super) async fn add_order(
        &mut self,
        customer: &Sel,
        items: &Vec<(String, u32)>,
        delivery: &Option<c::Address>,
        order_ref: &Option<String>,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        if let Some(id) = self.id(IdKind::Order) {
            return go((RowState::Succeeded, Some(format!("placed {id}"))));
        }
        if let Some(r) = order_ref
            .as_deref()
            .filter(|_| !self.e.look.is_created(&cid))
        {
            let listed = self.e.look.orders(&cid, false).await;
            let orders = step!(looked("list the customer's orders", listed));
            if let Some(o) = orders.iter().find(|o| o.id == r.trim()) {
                let id = o.id.clone();
                self.e.claim(IdKind::Order, &id, self.rec.id);
                self.set(IdKind::Order, &id);
                return go((
                    RowState::AlreadyExisted,
                    Some(format!(
                        "the Order Ref is order {id}, which is placed already"
                    )),
                ));
            }
        }
        let mut resolved = Vec::with_capacity(items.len());
        for (product, quantity) in items {
            resolved.push(c::OrderItem {
                product_id: step!(self.product(product).await),
                quantity: *quantity,
            });
        }
        let id = self.rec.id;
        let first = self
            .e
            .journaled(move |j| j.first_attempt_ms(id, "create"))
            .await?;
        let postcode = delivery.as_ref().map(|a| a.postcode.as_str());
        let contested = self.hold(&Claim::Order { customer: &cid }).await?;
        // Defence in depth: a resumed job lists the customer's orders even for a customer it
        // made, so a journal that lost its tail cannot double an order.
        let fresh = contested || self.e.resumed();
        if !self.doubt && (fresh || !self.e.look.is_created(&cid)) {
            let what = Natural::Order {
                customer: &cid,
                items: &resolved,
                postcode,
                since: now_ms() - c::REPEAT_ORDER_WINDOW_MS,
            };
            let found = step!(looked(
                "list the customer's orders",
                self.find(&what, fresh).await
            ));
            if let Some(found) = found {
                step!(self.existing("an identical order placed in the last 7 days", &found.id));
                self.e.claim(IdKind::Order, &found.id, self.rec.id);
                self.set(IdKind::Order, &found.id);
                return go((
                    RowState::AlreadyExisted,
                    Some(format!("order {} of the same items was placed in the last 7 days; plbulk does not place it twice (place it in the portal if a second one is wanted)", found.id)),
                ));
            }
        }
        let what = Natural::Order {
            customer: &cid,
            items: &resolved,
            postcode,
            since: first.unwrap_or_else(now_ms) - c::CLOCK_SKEW_ALLOWANCE_MS,
        };
        let body = c::NewOrder {
            items: resolved.clone(),
            delivery_address: delivery.clone(),
        };
        let req = ApiRequest::add_order(&cid, &body);
        let found = step!(self.create("create", &req, &what).await);
        self.e.claim(IdKind::Order, &found.id, self.rec.id);
        self.set(IdKind::Order, &found.id);
        go(SUCCEEDED)
    }

    pub(super) async fn user_settings(
        &mut self,
        customer: &Sel,
        user: &Sel,
        call: &Option<c::CallSettings>,
        schedule: &Option<c::ScheduleSettings>,
    ) -> Step<Outcome> {
        let cid = step!(self.customer(customer).await);
        let uid = step!(self.user(&cid, user).await);
        if let Some(call) = call {
            let req = ApiRequest::update_call_settings(&cid, &uid, call);
            step!(self.write("call-settings", &req).await);
        }
        if let Some(s) = schedule {
            let req = ApiRequest::update_schedule_settings(&cid, &uid, s);
            step!(self.write("schedule-settings", &req).await);
        }
        go(SUCCEEDED)
    }

    pub(super) async fn add_partner_user(&mut self, new: &c::NewPartnerUser) -> Step<Outcome> {
        let entity = Entity {
            key: IdKind::PartnerUser,
            claim: Claim::PartnerUser { email: &new.email },
            what: Natural::PartnerUser { email: &new.email },
            label: "a partner user with this email",
            list_what: "list the partner users",
        };
        let req = ApiRequest::add_partner_user(new);
        let (outcome, _) = step!(
            self.create_once(
                entity,
                true,
                |found: &str| {
                    let changes = c::PartnerUserChanges {
                        first_name: Some(new.first_name.clone()),
                        last_name: Some(new.last_name.clone()),
                        email: None,
                        role: new.role.clone(),
                    };
                    ApiRequest::update_partner_user(found, &changes)
                },
                req,
            )
            .await
        );
        go(outcome)
    }

    pub(super) async fn update_partner_user(
        &mut self,
        partner_user: &Sel,
        changes: &c::PartnerUserChanges,
    ) -> Step<Outcome> {
        let pid = step!(self.partner_user(partner_user).await);
        let req = ApiRequest::update_partner_user(&pid, changes);
        self.change(Target::PartnerUser { id: pid }, changes, "update", &req)
            .await
    }

    pub(super) async fn delete_partner_user(&mut self, partner_user: &Sel) -> Step<Outcome> {
        let pid = step!(self.partner_user(partner_user).await);
        let req = ApiRequest::delete_partner_user(&pid);
        self.delete_kept(Target::PartnerUser { id: pid }, &req)
            .await
    }

    pub(super) async fn allocate(
        &mut self,
        cid: &str,
        number: &str,
        nid: &str,
        uid: &str,
        current: Option<String>,
    ) -> Step<()> {
        if current.as_deref() == Some(uid) {
            return go(());
        }
        self.keep_before_map(allocation(current.as_deref()));
        let req = ApiRequest::allocate_number(cid, nid, uid);
        match self.send("allocate", &req).await? {
            Sent::Answered(_) => {}
            Sent::Refused(e) if e.status == Some(409) => {
                // Allocated already: to this user (our own lost answer) is success.
                match step!(self.number(cid, number, true).await) {
                    Some(n) if n.user.as_deref() == Some(uid) => {}
                    _ => return failed(&e),
                }
            }
            Sent::Refused(e) => return failed(&e),
        }
        self.e
            .look
            .number_changed(
                cid,
                c::Number {
                    id: nid.to_string(),
                    number: number.to_string(),
                    user_id: Some(uid.to_string()),
                },
            )
            .await;
        self.e.look.remember(
            cid,
            IdKind::Number,
            number,
            Known {
                id: nid.to_string(),
                user: Some(uid.to_string()),
            },
        );
        go(())
    }

    pub(super) async fn blocked_id(&mut self, cid: &str, number: &str) -> Step<String> {
        if let Some(id) = self.id(IdKind::Blocked) {
            return go(id);
        }
        match self.e.look.blocked_id(cid, number).await {
            Ok(Some(id)) => {
                self.set(IdKind::Blocked, &id);
                go(id)
            }
            Ok(None) => ends(
                RowState::Failed,
                format!("customer {cid} has no blocked number {number}"),
            ),
            Err(e) => lookup_failed("list the customer's blocked numbers", &e),
        }
    }

    pub(super) async fn partner_user(&mut self, sel: &Sel) -> Step<String> {
        if let Some(id) = self.id(IdKind::PartnerUser) {
            return go(id);
        }
        let id = match sel {
            Sel::Id(id) => id.clone(),
            Sel::Row(r) => step!(self.dep_id(*r, IdKind::PartnerUser)),
            Sel::Email(e) | Sel::Existing(e) => match self.e.look.partner_user_id(e).await {
                Ok(Some(id)) => id,
                Ok(None) => {
                    return ends(
                        RowState::Failed,
                        format!("there is no partner user with email {e}"),
                    )
                }
                Err(err) => return lookup_failed("list the partner users", &err),
            },
        };
        self.set(IdKind::PartnerUser, &id);
        go(id)
    }
}
