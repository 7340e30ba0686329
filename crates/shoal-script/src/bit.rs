//! The `bit` library (Lua BitOp, as bundled with Redis): 32-bit operations on Lua numbers.
//!
//! Every argument is first normalised the way BitOp does it: the number is rounded to the
//! nearest integer (ties to even, through the 2^52 + 2^51 trick) and its low 32 bits are taken
//! as a signed integer.

use mlua::{Lua, Table, Value, Variadic};

/// BitOp's `tobit`: the low 32 bits of the rounded number, signed.
fn tobit(n: f64) -> i32 {
    // Adding 2^52 + 2^51 moves the integer part into the low mantissa bits, rounding to even.
    let shifted = n + 6_755_399_441_055_744.0;
    shifted.to_bits() as u32 as i32
}

fn arg(v: &Value) -> mlua::Result<i32> {
    match v {
        Value::Integer(i) => Ok(tobit(*i as f64)),
        Value::Number(n) => Ok(tobit(*n)),
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .map(tobit)
            .ok_or_else(|| mlua::Error::runtime("bad argument (number expected)")),
        _ => Err(mlua::Error::runtime("bad argument (number expected)")),
    }
}

fn num(x: i32) -> Value {
    Value::Number(x as f64)
}

/// Installs `bit` in the globals.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let bit: Table = lua.create_table()?;
    bit.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(num(arg(&v)?)))?,
    )?;
    bit.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(num(!arg(&v)?)))?,
    )?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: Variadic<Value>| {
            let mut it = args.iter();
            let first = it
                .next()
                .ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected)"))?;
            let mut acc = arg(first)?;
            for v in it {
                acc = f(acc, arg(v)?);
            }
            Ok(num(acc))
        })
    };
    bit.raw_set("band", fold(lua, |a, b| a & b)?)?;
    bit.raw_set("bor", fold(lua, |a, b| a | b)?)?;
    bit.raw_set("bxor", fold(lua, |a, b| a ^ b)?)?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (v, n): (Value, Value)| {
            Ok(num(f(arg(&v)?, (arg(&n)? & 31) as u32)))
        })
    };
    bit.raw_set("lshift", shift(lua, |a, n| ((a as u32) << n) as i32)?)?;
    bit.raw_set("rshift", shift(lua, |a, n| ((a as u32) >> n) as i32)?)?;
    bit.raw_set("arshift", shift(lua, |a, n| a >> n)?)?;
    bit.raw_set("rol", shift(lua, |a, n| (a as u32).rotate_left(n) as i32)?)?;
    bit.raw_set("ror", shift(lua, |a, n| (a as u32).rotate_right(n) as i32)?)?;
    bit.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(num((arg(&v)? as u32).swap_bytes() as i32)))?,
    )?;
    bit.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = arg(&v)? as u32;
            let n = match n {
                Some(n) => arg(&n)?,
                None => 8,
            };
            let (upper, width) = if n < 0 { (true, -n) } else { (false, n) };
            let width = width.clamp(1, 8) as usize;
            let masked = if width < 8 {
                x & ((1u32 << (4 * width)) - 1)
            } else {
                x
            };
            Ok(if upper {
                format!("{masked:0width$X}")
            } else {
                format!("{masked:0width$x}")
            })
        })?,
    )?;
    lua.globals().raw_set("bit", bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_rounds_and_wraps_like_bitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
        assert_eq!(tobit(-1.0), -1);
    }
}
