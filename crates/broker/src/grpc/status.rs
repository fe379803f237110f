//! RocketMQ 5's status codes: every gRPC answer carries a `Status` (the call itself
//! succeeds), as RocketMQ's proxy answers; broker refusals are translated from their
//! remoting codes.

use grpc::v2::{Code, Status};
use remoting::code::response;

pub fn ok() -> Option<Status> {
    Some(Status {
        code: Code::Ok as i32,
        message: "OK".into(),
    })
}

pub fn of(code: Code, message: impl Into<String>) -> Option<Status> {
    Some(Status {
        code: code as i32,
        message: message.into(),
    })
}

/// The v2 code for a remoting response code (a refusal's).
pub fn code_of_remoting(code: i32) -> Code {
    match code {
        response::SUCCESS => Code::Ok,
        response::SYSTEM_BUSY => Code::TooManyRequests,
        response::REQUEST_CODE_NOT_SUPPORTED => Code::NotImplemented,
        response::SUBSCRIPTION_GROUP_NOT_EXIST => Code::ConsumerGroupNotFound,
        response::TOPIC_NOT_EXIST => Code::TopicNotFound,
        response::NO_PERMISSION => Code::Forbidden,
        response::MESSAGE_ILLEGAL => Code::BadRequest,
        response::INVALID_PARAMETER => Code::BadRequest,
        response::FLUSH_DISK_TIMEOUT => Code::MasterPersistenceTimeout,
        response::FLUSH_SLAVE_TIMEOUT => Code::SlavePersistenceTimeout,
        response::SLAVE_NOT_AVAILABLE => Code::HaNotAvailable,
        response::POLLING_FULL => Code::TooManyRequests,
        response::LMQ_QUOTA_EXCEEDED => Code::LiteTopicQuotaExceeded,
        response::LITE_SUBSCRIPTION_QUOTA_EXCEEDED => Code::LiteSubscriptionQuotaExceeded,
        response::POLLING_TIMEOUT | response::PULL_NOT_FOUND | response::NO_MESSAGE => {
            Code::MessageNotFound
        }
        _ => Code::InternalServerError,
    }
}

/// A remoting answer as a status: OK, or the refusal with its remark.
pub fn of_remoting(code: i32, remark: Option<&str>) -> Option<Status> {
    let v2 = code_of_remoting(code);
    if v2 == Code::Ok {
        return ok();
    }
    of(v2, remark.unwrap_or("refused by the broker"))
}
