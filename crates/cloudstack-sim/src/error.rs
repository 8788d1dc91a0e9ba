//! The errors the API answers, with the codes and texts the real server uses.
//!
//! The HTTP status always equals `errorcode`; `cserrorcode` is the number
//! CloudStack assigns to the Java exception class behind the error.

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {text}")]
pub struct ApiError {
    pub code: u16,
    /// `None` for errors raised before a command runs (authentication).
    pub cs_code: Option<u32>,
    pub text: String,
}

/// `com.cloud.exception.InvalidParameterValueException`.
const CS_INVALID_PARAMETER: u32 = 4350;
/// `com.cloud.api.ServerApiException`.
const CS_SERVER_API: u32 = 9999;
/// `com.cloud.exception.NetworkRuleConflictException`.
const CS_RULE_CONFLICT: u32 = 4365;
/// `com.cloud.exception.ResourceInUseException`.
const CS_IN_USE: u32 = 4400;
/// `com.cloud.utils.exception.CloudRuntimeException`.
const CS_RUNTIME: u32 = 4250;

impl ApiError {
    pub fn new(code: u16, cs_code: Option<u32>, text: impl Into<String>) -> Self {
        ApiError {
            code,
            cs_code,
            text: text.into(),
        }
    }

    pub fn unauthorized() -> Self {
        ApiError::new(
            401,
            None,
            "unable to verify user credentials and/or request signature",
        )
    }

    pub fn unknown_command(command: &str) -> Self {
        ApiError::new(
            432,
            Some(CS_SERVER_API),
            format!("The given command '{command}' either does not exist, is not available for user, or not available from ip address '127.0.0.1'."),
        )
    }

    pub fn missing(command: &str, param: &str) -> Self {
        ApiError::new(
            431,
            Some(CS_SERVER_API),
            format!(
                "Unable to execute API command {} due to missing parameter {param}",
                command.to_lowercase()
            ),
        )
    }

    pub fn bad_number(command: &str, param: &str, value: &str) -> Self {
        ApiError::new(
            431,
            Some(CS_SERVER_API),
            format!("Unable to execute API command {} due to invalid value {value} for parameter {param}", command.to_lowercase()),
        )
    }

    pub fn bad_uuid(command: &str, param: &str, value: &str) -> Self {
        ApiError::new(
            431,
            Some(CS_SERVER_API),
            format!(
                "Unable to execute API command {} due to invalid value. Invalid parameter {param} value={value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.",
                command.to_lowercase()
            ),
        )
    }

    /// An `InvalidParameterValueException` raised by the command itself.
    pub fn invalid(text: impl Into<String>) -> Self {
        ApiError::new(431, Some(CS_INVALID_PARAMETER), text)
    }

    pub fn conflict(text: impl Into<String>) -> Self {
        ApiError::new(537, Some(CS_RULE_CONFLICT), text)
    }

    pub fn in_use(text: impl Into<String>) -> Self {
        ApiError::new(536, Some(CS_IN_USE), text)
    }

    pub fn internal(text: impl Into<String>) -> Self {
        ApiError::new(530, Some(CS_RUNTIME), text)
    }

    pub fn api_limit() -> Self {
        ApiError::new(
            429,
            Some(CS_SERVER_API),
            "The given user has reached his/her account api limit, please retry after 1000 ms.",
        )
    }

    /// The object under the response key: `{"uuidList": [], "errorcode": ..}`.
    pub fn body(&self) -> Value {
        let mut v = json!({"uuidList": [], "errorcode": self.code});
        if let Some(cs) = self.cs_code {
            v["cserrorcode"] = json!(cs);
        }
        v["errortext"] = json!(self.text);
        v
    }

    /// What a failed async job carries in `jobresult`.
    pub fn job_result(&self) -> Value {
        json!({"errorcode": self.code, "errortext": self.text})
    }
}
