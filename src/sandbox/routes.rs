//! The sandbox's HTTP face: one handler per contract operation, each a thin shell that parses
//! the request, calls the [`World`](super::world::World) and shapes the answer as the contract
//! does (`201` for creates, `204` for deletes, `{"data", "meta"}` for lists, the error body for
//! refusals). Routes are registered from the contract's own table of paths.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::outage::{KeyRefusedRequest, OutageRequest};
use super::world::{EmailKind, Fault, World};
use super::Shared;
use crate::contract::{self as c, ErrorBody, ErrorDetail, ListResponse, Operation, PageMeta};

type S = Arc<Shared>;
type Q = Query<HashMap<String, String>>;

pub fn api(shared: S) -> Router {
    let mut router = Router::new();
    for &op in Operation::ALL {
        router = router.route(op.template(), handler(op));
    }
    router
        .route("/__sandbox/state", routing::get(inspect_state))
        .route("/__sandbox/requests", routing::get(inspect_requests))
        .route(
            "/__sandbox/faults",
            routing::post(|State(s): State<S>, b: Bytes| async move {
                match parse::<Vec<super::ScriptedFault>>(&b).and_then(|f| {
                    s.script(&f)
                        .map_err(|m| Fault::new(422, c::codes::VALIDATION, m))
                }) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(f) => fault(f),
                }
            }),
        )
        .route(
            "/__sandbox/outage",
            routing::post(|State(s): State<S>, b: Bytes| async move {
                match parse::<OutageRequest>(&b).and_then(|r| {
                    let length = positive_ms(r.for_ms)?;
                    Ok(s.start_outage(r.mode, Duration::from_millis(r.after_ms), length))
                }) {
                    Ok(o) => Json(o).into_response(),
                    Err(f) => fault(f),
                }
            }),
        )
        .route(
            "/__sandbox/outages",
            routing::get(|State(s): State<S>| async move { Json(s.outages()) }),
        )
        .route(
            "/__sandbox/key-refused",
            routing::post(|State(s): State<S>, b: Bytes| async move {
                match parse::<KeyRefusedRequest>(&b).and_then(|r| {
                    let length = positive_ms(r.for_ms)?;
                    Ok(s.refuse_key(Duration::from_millis(r.after_ms), length))
                }) {
                    Ok(r) => Json(r).into_response(),
                    Err(f) => fault(f),
                }
            })
            .get(|State(s): State<S>| async move { Json(s.key_refusals()) }),
        )
        .route(
            "/__sandbox/expire-tokens",
            routing::post(|State(s): State<S>| async move {
                s.expire_tokens();
                StatusCode::NO_CONTENT
            }),
        )
        .fallback(|| async {
            fault(Fault::new(
                404,
                c::codes::NOT_FOUND,
                "no such path in the API",
            ))
        })
        .with_state(shared)
}

fn method<H, T>(op: Operation, h: H) -> MethodRouter<S>
where
    H: axum::handler::Handler<T, S>,
    T: 'static,
{
    match op.method() {
        c::Method::Get => routing::get(h),
        c::Method::Post => routing::post(h),
        c::Method::Put => routing::put(h),
        c::Method::Delete => routing::delete(h),
    }
}

fn handler(op: Operation) -> MethodRouter<S> {
    use Operation as O;
    match op {
        O::GetJwt => method(op, super::auth_handler),
        O::LookupAddresses => method(op, |State(s): State<S>, q: Q| async move {
            let postcode = q.get(c::POSTCODE_PARAM).map(String::as_str).unwrap_or("");
            let items = s.world().lookup_addresses(postcode);
            list(&s, &q, Ok(items))
        }),
        O::ListCustomers => method(op, |State(s): State<S>, q: Q| async move {
            let items: Vec<_> = s.world().customers.values().cloned().collect();
            list(&s, &q, Ok(items))
        }),
        O::AddCustomer => method(op, |State(s): State<S>, b: Bytes| async move {
            created(parse(&b).and_then(|n| s.world().add_customer(n)))
        }),
        O::GetCustomer => method(
            op,
            |State(s): State<S>, Path(id): Path<String>| async move {
                ok(s.world().customer(&id).cloned())
            },
        ),
        O::UpdateCustomer => method(
            op,
            |State(s): State<S>, Path(id): Path<String>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().update_customer(&id, ch)))
            },
        ),
        O::DeleteCustomer => method(
            op,
            |State(s): State<S>, Path(id): Path<String>| async move {
                no_content(s.world().delete_customer(&id))
            },
        ),
        O::RegradeContract => method(
            op,
            |State(s): State<S>, Path(id): Path<String>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().regrade_contract(&id, ch)))
            },
        ),
        O::UpgradePlan => method(
            op,
            |State(s): State<S>, Path(id): Path<String>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().upgrade_plan(&id, ch)))
            },
        ),
        O::ListCustomerNumbers => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, q: Q| async move {
                let r = s.world().customer_numbers(&cid);
                list(&s, &q, r)
            },
        ),
        O::AddCustomerNumber => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, b: Bytes| async move {
                created(parse(&b).and_then(|n| s.world().add_number(&cid, n)))
            },
        ),
        O::GetCustomerNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                ok(s.world().number(&cid, &id).cloned())
            },
        ),
        O::AllocateNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>, b: Bytes| async move {
                ok(parse(&b).and_then(|a| s.world().allocate_number(&cid, &id, a)))
            },
        ),
        O::DeallocateNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                no_content(s.world().deallocate_number(&cid, &id))
            },
        ),
        O::ListBlockedNumbers => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, q: Q| async move {
                let r = s.world().blocked_numbers(&cid);
                list(&s, &q, r)
            },
        ),
        O::AddBlockedNumber => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, b: Bytes| async move {
                created(parse(&b).and_then(|n| s.world().add_blocked(&cid, n)))
            },
        ),
        O::GetBlockedNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                ok(s.world().blocked_number(&cid, &id).cloned())
            },
        ),
        O::UpdateBlockedNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().update_blocked(&cid, &id, ch)))
            },
        ),
        O::DeleteBlockedNumber => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                no_content(s.world().delete_blocked(&cid, &id))
            },
        ),
        O::ListCustomerUsers => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, q: Q| async move {
                let r = s.world().customer_users(&cid);
                list(&s, &q, r)
            },
        ),
        O::AddCustomerUser => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, b: Bytes| async move {
                created(parse(&b).and_then(|n| s.world().add_user(&cid, n)))
            },
        ),
        O::UpdateCustomerUser => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().update_user(&cid, &id, ch)))
            },
        ),
        O::DeleteCustomerUser => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                no_content(s.world().delete_user(&cid, &id))
            },
        ),
        O::ResendActivation | O::RequestPasswordReset => method(
            op,
            move |State(s): State<S>, Path((cid, id)): Path<(String, String)>| async move {
                let kind = if op == O::ResendActivation {
                    EmailKind::Activation
                } else {
                    EmailKind::PasswordReset
                };
                ok(s.world().send_email(&cid, &id, kind))
            },
        ),
        O::UpdateCallSettings => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>, b: Bytes| async move {
                ok(parse(&b).and_then(|st| s.world().update_call_settings(&cid, &id, st)))
            },
        ),
        O::UpdateScheduleSettings => method(
            op,
            |State(s): State<S>, Path((cid, id)): Path<(String, String)>, b: Bytes| async move {
                ok(parse(&b).and_then(|st| s.world().update_schedule(&cid, &id, st)))
            },
        ),
        O::ListCustomerOrders => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, q: Q| async move {
                let r = s.world().customer_orders(&cid);
                list(&s, &q, r)
            },
        ),
        O::AddCustomerOrder => method(
            op,
            |State(s): State<S>, Path(cid): Path<String>, b: Bytes| async move {
                created(parse(&b).and_then(|n| s.world().add_order(&cid, n)))
            },
        ),
        O::AddUserDevice => method(
            op,
            |State(s): State<S>, Path((cid, uid)): Path<(String, String)>, b: Bytes| async move {
                created(parse(&b).and_then(|n| s.world().add_device(&cid, &uid, n)))
            },
        ),
        O::ListAreaCodes => method(op, |State(s): State<S>, q: Q| async move {
            let items = s.world().area_codes.clone();
            list(&s, &q, Ok(items))
        }),
        O::ListAvailableNumbers => method(op, |State(s): State<S>, q: Q| async move {
            let items = s
                .world()
                .available(q.get(c::AREA_CODE_PARAM).map(String::as_str));
            list(&s, &q, Ok(items))
        }),
        O::ListPartnerOrders => method(op, |State(s): State<S>, q: Q| async move {
            let items: Vec<_> = s.world().orders.values().cloned().collect();
            list(&s, &q, Ok(items))
        }),
        O::ListProducts => method(op, |State(s): State<S>, q: Q| async move {
            let items = s.world().products.clone();
            list(&s, &q, Ok(items))
        }),
        O::GetPartnerSettings => method(op, |State(s): State<S>| async move {
            ok(Ok(s.world().partner_settings.clone()))
        }),
        O::UpdatePartnerSettings => method(op, |State(s): State<S>, b: Bytes| async move {
            ok(parse(&b).and_then(|v| s.world().update_partner_settings(v)))
        }),
        O::ListUserPermissions => method(op, |State(s): State<S>, q: Q| async move {
            let items = s.world().permissions.clone();
            list(&s, &q, Ok(items))
        }),
        O::UpdateUserPermissions => method(op, |State(s): State<S>, q: Q, b: Bytes| async move {
            let r = parse(&b).and_then(|u| s.world().update_permissions(u));
            list(&s, &q, r)
        }),
        O::GetStats => method(
            op,
            |State(s): State<S>| async move { ok(Ok(s.world().stats())) },
        ),
        O::ListPartnerUsers => method(op, |State(s): State<S>, q: Q| async move {
            let items: Vec<_> = s.world().partner_users.values().cloned().collect();
            list(&s, &q, Ok(items))
        }),
        O::AddPartnerUser => method(op, |State(s): State<S>, b: Bytes| async move {
            created(parse(&b).and_then(|n| s.world().add_partner_user(n)))
        }),
        O::UpdatePartnerUser => method(
            op,
            |State(s): State<S>, Path(id): Path<String>, b: Bytes| async move {
                ok(parse(&b).and_then(|ch| s.world().update_partner_user(&id, ch)))
            },
        ),
        O::DeletePartnerUser => method(
            op,
            |State(s): State<S>, Path(id): Path<String>| async move {
                no_content(s.world().delete_partner_user(&id))
            },
        ),
    }
}

/// A spell's `for_ms`: a spell of no time is a mistake in the test that asked for it.
fn positive_ms(ms: u64) -> Result<Duration, Fault> {
    if ms == 0 {
        let mut f = Fault::new(422, c::codes::VALIDATION, "for_ms must be at least 1");
        f.fields
            .insert("for_ms".to_string(), "must be at least 1".to_string());
        return Err(f);
    }
    Ok(Duration::from_millis(ms))
}

async fn inspect_state(State(s): State<S>) -> Response {
    Json(s.world().snapshot()).into_response()
}

async fn inspect_requests(State(s): State<S>) -> Response {
    Json(s.request_log()).into_response()
}

/// Malformed JSON is a 400; JSON of the wrong shape is a 422 that names the field when serde
/// does (a missing field, say).
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Fault> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Fault::malformed(format!("the body is not valid JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        let mut f = Fault::new(422, c::codes::VALIDATION, format!("invalid body: {msg}"));
        let field = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            .unwrap_or("body")
            .to_string();
        let what = if msg.starts_with("missing field") {
            "required".to_string()
        } else {
            msg
        };
        f.fields.insert(field, what);
        f
    })
}

pub(super) fn fault(f: Fault) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: f.code.to_string(),
            message: f.message,
            fields: f.fields,
        },
    };
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn reply<T: Serialize>(status: StatusCode, r: Result<T, Fault>) -> Response {
    match r {
        Ok(v) => (status, Json(v)).into_response(),
        Err(f) => fault(f),
    }
}

fn ok<T: Serialize>(r: Result<T, Fault>) -> Response {
    reply(StatusCode::OK, r)
}

fn created<T: Serialize>(r: Result<T, Fault>) -> Response {
    reply(StatusCode::CREATED, r)
}

fn no_content(r: Result<(), Fault>) -> Response {
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(f) => fault(f),
    }
}

/// A page of `items` as `?page=&pageSize=` ask, capped at the sandbox's largest page.
fn list<T: Serialize>(
    s: &Shared,
    q: &HashMap<String, String>,
    items: Result<Vec<T>, Fault>,
) -> Response {
    let items = match items {
        Ok(i) => i,
        Err(f) => return fault(f),
    };
    let number =
        |name: &str, default: u32| -> Result<u32, Fault> {
            match q.get(name) {
                None => Ok(default),
                Some(v) => v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    Fault::malformed(format!("{name} must be a whole number from 1"))
                }),
            }
        };
    let (page, asked) = match (
        number(c::PAGE_PARAM, 1),
        number(c::PAGE_SIZE_PARAM, c::MAX_PAGE_SIZE),
    ) {
        (Ok(p), Ok(z)) => (p, z),
        (Err(f), _) | (_, Err(f)) => return fault(f),
    };
    let page_size = asked.min(s.config.max_page_size);
    let total = items.len() as u64;
    let start = (page as usize - 1).saturating_mul(page_size as usize);
    let data: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(page_size as usize)
        .collect();
    Json(ListResponse {
        data,
        meta: PageMeta {
            page,
            page_size,
            total,
        },
    })
    .into_response()
}

impl Shared {
    pub(super) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }
}
