//! The calculator example: `add`, `subtract`, `multiply` and `divide` on numbers `a` and `b`.
//!
//! Integers stay integers (`add(a=2, b=3)` is `5`, as in Python); `divide` always returns a
//! float, like Python's `/`. Dividing by zero is a typed error, `DivisionByZero`.

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmrpc_guest::{Context, RemoteError, endpoint};

/// A JSON number as Python sees it: an int or a float.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

#[derive(Debug)]
pub struct DivisionByZero;

impl fmt::Display for DivisionByZero {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}

impl std::error::Error for DivisionByZero {}

#[derive(Default)]
pub struct Calculator;

fn arith(
    a: Number,
    b: Number,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Number, RemoteError> {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => int(x, y)
            .map(Number::Int)
            .ok_or_else(|| RemoteError::new("OverflowError", "integer result does not fit in 64 bits")),
        _ => Ok(Number::Float(float(a.as_f64(), b.as_f64()))),
    }
}

#[endpoint(version = "1.0")]
impl Calculator {
    pub fn add(&self, _ctx: &Context, a: Number, b: Number) -> Result<Number, RemoteError> {
        arith(a, b, i64::checked_add, |x, y| x + y)
    }

    pub fn subtract(&self, _ctx: &Context, a: Number, b: Number) -> Result<Number, RemoteError> {
        arith(a, b, i64::checked_sub, |x, y| x - y)
    }

    pub fn multiply(&self, _ctx: &Context, a: Number, b: Number) -> Result<Number, RemoteError> {
        arith(a, b, i64::checked_mul, |x, y| x * y)
    }

    pub fn divide(&self, _ctx: &Context, a: Number, b: Number) -> Result<f64, DivisionByZero> {
        let divisor = b.as_f64();
        if divisor == 0.0 { Err(DivisionByZero) } else { Ok(a.as_f64() / divisor) }
    }
}
