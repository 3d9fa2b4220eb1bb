//! Reading the Go implementation's JSON: byte fields are base64 (`[]byte`) or hex (fixed
//! arrays and a few named types, sometimes `0x`-prefixed), integers are numbers or strings.

use serde_json::Value;

/// `v[name]`, or an error naming the field.
pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field {name}"))
}

/// An unsigned integer given as a JSON number or a decimal string.
pub fn as_u64(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("not a u64: {n}")),
        Value::String(s) => s.parse().map_err(|e| format!("not a u64: {s:?}: {e}")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

/// `v[name]` as u64.
pub fn u64_field(v: &Value, name: &str) -> Result<u64, String> {
    as_u64(field(v, name)?)
}

/// Bytes given as base64 (`null` is empty).
pub fn as_b64(v: &Value) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("base64: {e}")),
        other => Err(format!("expected base64 string, got {other}")),
    }
}

/// Bytes given as hex, with or without `0x` (`null` is empty).
pub fn as_hex(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => {
            hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| format!("hex: {e}"))
        }
        Value::Array(items) => items
            .iter()
            .map(|i| as_u64(i).and_then(|n| u8::try_from(n).map_err(|_| format!("byte {n} > 255"))))
            .collect(),
        other => Err(format!("expected hex string, got {other}")),
    }
}

/// A fixed-size byte field whose encoding is hex or base64 depending on the Go type: tells
/// them apart by length (hex of N bytes has 2N characters, base64 has 4⌈N/3⌉).
pub fn as_fixed<const N: usize>(v: &Value) -> Result<[u8; N], String> {
    let bytes = match v {
        Value::String(s) if s.strip_prefix("0x").unwrap_or(s).len() == 2 * N => as_hex(v)?,
        Value::String(_) => as_b64(v)?,
        Value::Array(_) => as_hex(v)?,
        Value::Null => Vec::new(),
        other => return Err(format!("expected bytes, got {other}")),
    };
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("expected {N} bytes, got {}", b.len()))
}

/// A JSON array (`null` is empty).
pub fn as_array(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(a) => Ok(a),
        other => Err(format!("expected array, got {other}")),
    }
}
