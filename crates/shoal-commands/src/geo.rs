//! Geo commands (GEOADD, GEOPOS, GEODIST, GEOHASH), stored as sorted sets.
//!
//! A position is stored as the score of its member: Redis's 52-bit geohash, the longitude and
//! latitude each quantised to 26 bits over [-180, 180] and [-85.05112878, 85.05112878] (the
//! Web Mercator limits) and interleaved, latitude in the even bits. Positions read back are the
//! centres of those cells, so replies match Redis digit for digit. Distances use Redis's
//! haversine formula and earth radius.
//!
//! Layout, top to bottom: the spec table, the handlers in table order, then the geohash helpers.

use bytes::Bytes;
use shoal_resp::Frame;

use crate::args::is;
use crate::cx::Cx;
use crate::error::{CmdResult, CommandError};
use crate::spec::{CommandSpec, Flags, Group, KeyAccess, Keys};
use crate::zsets::{read_zset, zadd_generic, AddOptions};

const ONE: Keys = Keys::Range {
    first: 1,
    last: 1,
    step: 1,
};

const fn geo(name: &'static str, arity: i32, handler: crate::spec::Handler) -> CommandSpec {
    CommandSpec::new(name, Group::Geo, arity, handler)
}

/// The geo family.
pub(crate) const COMMANDS: &[CommandSpec] = &[
    geo("geoadd", -5, geoadd)
        .flags(Flags::WRITE.with(Flags::DENYOOM))
        .keys(ONE, KeyAccess::ReadWrite)
        .doc("Adds one or more members to a geospatial index. The key is created if it doesn't exist.", "3.2.0"),
    geo("geodist", -4, geodist)
        .flags(Flags::READONLY)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the distance between two members of a geospatial index.", "3.2.0"),
    geo("geohash", -2, geohash)
        .flags(Flags::READONLY)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns members from a geospatial index as geohash strings.", "3.2.0"),
    geo("geopos", -2, geopos)
        .flags(Flags::READONLY)
        .keys(ONE, KeyAccess::Read)
        .doc("Returns the longitude and latitude of members from a geospatial index.", "3.2.0"),
];

// Command: GEOADD key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]
//
// > GEOADD g 13.361389 38.115556 Palermo
// (integer) 1
fn geoadd(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let mut opts = AddOptions::default();
    let mut i = 2;
    while let Some(opt) = a.get(i) {
        if is(opt, "NX") {
            opts.nx = true;
        } else if is(opt, "XX") {
            opts.xx = true;
        } else if is(opt, "CH") {
            opts.ch = true;
        } else {
            break;
        }
        i += 1;
    }
    let rest = &a[i..];
    if !rest.len().is_multiple_of(3) || (opts.xx && opts.nx) {
        return Err(CommandError::Syntax);
    }
    if rest.is_empty() {
        // Redis hands an empty pair list on to ZADD, which calls it a syntax error too.
        return Err(CommandError::Syntax);
    }
    let mut pairs = Vec::with_capacity(rest.len() / 3);
    for t in rest.chunks_exact(3) {
        let (lon, lat) = lon_lat(&t[0], &t[1])?;
        pairs.push((encode(lon, lat) as f64, &t[2][..]));
    }
    zadd_generic(cx, &a[1], &pairs, opts)
}

// Command: GEODIST key member1 member2 [M|KM|FT|MI]
//
// > GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
// (integer) 2
// > GEODIST g Palermo Catania KM
// "166.2742"
fn geodist(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let to_meters = match a.len() {
        4 => 1.0,
        5 => unit(&a[4])?,
        _ => return Err(CommandError::Syntax),
    };
    let Some(z) = read_zset(cx, &a[1])? else {
        return Ok(Frame::Null);
    };
    match (z.score(&a[2]), z.score(&a[3])) {
        (Some(s1), Some(s2)) => {
            let (lon1, lat1) = decode(s1 as u64);
            let (lon2, lat2) = decode(s2 as u64);
            let d = distance(lon1, lat1, lon2, lat2) / to_meters;
            Ok(Frame::Bulk(Bytes::from(format!("{d:.4}"))))
        }
        _ => Ok(Frame::Null),
    }
}

// Command: GEOHASH key [member ...]
//
// > GEOADD g 13.361389 38.115556 Palermo
// (integer) 1
// > GEOHASH g Palermo
// 1) "sqc8b49rny0"
fn geohash(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let z = read_zset(cx, &a[1])?;
    Ok(Frame::Array(
        a[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                Some(s) => Frame::Bulk(Bytes::from(hash_string(s as u64))),
                None => Frame::Null,
            })
            .collect(),
    ))
}

// Command: GEOPOS key [member ...]
//
// > GEOADD g 13.361389 38.115556 Palermo
// (integer) 1
// > GEOPOS g Palermo nope
// 1) 1) "13.36138933897018433"
//    2) "38.11555639549629859"
// 2) (nil)
fn geopos(cx: &mut Cx<'_>, a: &[Bytes]) -> CmdResult {
    let z = read_zset(cx, &a[1])?;
    Ok(Frame::Array(
        a[2..]
            .iter()
            .map(|m| match z.and_then(|z| z.score(m)) {
                Some(s) => {
                    let (lon, lat) = decode(s as u64);
                    Frame::Array(vec![human(lon), human(lat)])
                }
                None => Frame::NullArray,
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Geohash helpers.

const LON_MIN: f64 = -180.0;
const LON_MAX: f64 = 180.0;
const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
/// Bits per coordinate.
const STEP: u32 = 26;
/// Redis's earth radius, in meters.
const EARTH_RADIUS: f64 = 6372797.560856;

/// Parses and range-checks a longitude/latitude pair as `extractLongLatOrReply` does.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CommandError> {
    let lon = crate::args::parse_f64(lon).ok_or(CommandError::NotFloat)?;
    let lat = crate::args::parse_f64(lat).ok_or(CommandError::NotFloat)?;
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(CommandError::Other(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Meters per unit (`M`, `KM`, `FT`, `MI`, any case).
fn unit(arg: &[u8]) -> Result<f64, CommandError> {
    if is(arg, "m") {
        Ok(1.0)
    } else if is(arg, "km") {
        Ok(1000.0)
    } else if is(arg, "ft") {
        Ok(0.3048)
    } else if is(arg, "mi") {
        Ok(1609.34)
    } else {
        Err(CommandError::err(
            "unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// Spreads the 32 bits of `v` to the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The inverse of [`spread`]: the even bits of `x`, packed.
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// The 52-bit geohash of a position over the given ranges.
fn encode_in(lon: f64, lat: f64, lon_range: (f64, f64), lat_range: (f64, f64)) -> u64 {
    let cells = (1u64 << STEP) as f64;
    let lat_off = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * cells;
    let lon_off = (lon - lon_range.0) / (lon_range.1 - lon_range.0) * cells;
    spread(lat_off as u32) | (spread(lon_off as u32) << 1)
}

fn encode(lon: f64, lat: f64) -> u64 {
    encode_in(lon, lat, (LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX))
}

/// The centre of a hash's cell, clamped to the valid ranges.
fn decode(bits: u64) -> (f64, f64) {
    let ilat = squash(bits) as f64;
    let ilon = squash(bits >> 1) as f64;
    let cells = (1u64 << STEP) as f64;
    let lat_min = LAT_MIN + (ilat / cells) * (LAT_MAX - LAT_MIN);
    let lat_max = LAT_MIN + ((ilat + 1.0) / cells) * (LAT_MAX - LAT_MIN);
    let lon_min = LON_MIN + (ilon / cells) * (LON_MAX - LON_MIN);
    let lon_max = LON_MIN + ((ilon + 1.0) / cells) * (LON_MAX - LON_MIN);
    let lon = ((lon_min + lon_max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((lat_min + lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// Redis's haversine distance in meters.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let rad = |d: f64| d * (std::f64::consts::PI / 180.0);
    let v = ((rad(lon2) - rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return EARTH_RADIUS * (rad(lat2) - rad(lat1)).abs();
    }
    let (lat1r, lat2r) = (rad(lat1), rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// The standard 11-character geohash: the stored cell centre re-encoded over the standard
/// latitude range [-90, 90], base32.
fn hash_string(bits: u64) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode(bits);
    let h = encode_in(lon, lat, (-180.0, 180.0), (-90.0, 90.0));
    (0..11)
        .map(|i| {
            // Only 52 bits exist; the 11th character's missing bits are zero, as in Redis.
            let idx = if i == 10 {
                0
            } else {
                (h >> (52 - (i + 1) * 5)) & 0x1F
            };
            ALPHABET[idx as usize]
        })
        .collect()
}

/// A coordinate as Redis's `addReplyHumanLongDouble`: 17 decimals, trailing zeros dropped.
fn human(v: f64) -> Frame {
    let s = format!("{v:.17}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    Frame::Bulk(Bytes::from(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palermo_round_trips_like_redis() {
        let bits = encode(13.361389, 38.115556);
        assert_eq!(bits, 3479099956230698);
        let (lon, lat) = decode(bits);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(hash_string(bits), b"sqc8b49rny0");
        let catania = decode(encode(15.087269, 37.502669));
        let d = distance(lon, lat, catania.0, catania.1);
        assert_eq!(format!("{:.4}", d / 1000.0), "166.2742");
    }
}
