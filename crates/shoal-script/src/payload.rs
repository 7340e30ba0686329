//! The `FUNCTION DUMP` payload, in Redis's format: for each library the RDB opcode
//! `FUNCTION2` (245) and its code as an RDB string, then the RDB version (10, little endian)
//! and a CRC64 (Jones polynomial, little endian) of everything before it.
//!
//! Only what function payloads need lives here: RDB lengths, plain and LZF-compressed strings
//! (Redis compresses long code), and the checksum. The general RDB codec belongs to the
//! persistence work and should absorb this module when it lands.

const OPCODE_FUNCTION2: u8 = 245;
const RDB_VERSION: u16 = 10;

/// Redis's CRC64 (Jones polynomial, reflected, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9, bit-reversed
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if len <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// The payload for libraries with these codes.
pub fn dump<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        write_len(&mut out, code.len());
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

const BAD: &str = "ERR DUMP payload version or checksum are wrong";

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.s.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.s.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    /// An RDB length, or `Err(encoding)` for a special string encoding.
    fn len(&mut self) -> Option<Result<usize, u8>> {
        let b = self.byte()?;
        Some(match b >> 6 {
            0 => Ok((b & 0x3f) as usize),
            1 => Ok((((b & 0x3f) as usize) << 8) | self.byte()? as usize),
            2 if b == 0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize),
            2 if b == 0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().ok()?) as usize),
            2 => return None,
            _ => Err(b & 0x3f),
        })
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len()? {
            Ok(n) => Some(self.take(n)?.to_vec()),
            // LZF-compressed: compressed length, original length, data.
            Err(3) => {
                let clen = self.len()?.ok()?;
                let len = self.len()?.ok()?;
                lzf_decompress(self.take(clen)?, len)
            }
            // Integer encodings (8, 16, 32 bits) as their decimal text.
            Err(0) => Some((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            Err(2) => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            Err(_) => None,
        }
    }
}

/// LZF decompression (the format of Redis's `lzf_d.c`) into exactly `len` bytes.
fn lzf_decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 26));
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            out.extend_from_slice(input.get(i..i + run)?);
            i += run;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            for k in 0..n + 2 {
                let b = *out.get(start + k)?;
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

/// The library codes in a payload, after checking its version and checksum.
pub fn parse(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if payload.len() < 10 {
        return Err(BAD.into());
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || u64::from_le_bytes(crc) != crc64(&payload[..payload.len() - 8]) {
        return Err(BAD.into());
    }
    let mut r = Reader { s: body, at: 0 };
    let mut codes = Vec::new();
    while r.at < body.len() {
        let op = r.byte().ok_or(BAD)?;
        if op != OPCODE_FUNCTION2 {
            return Err(format!("ERR given type is not a function code: {op}"));
        }
        codes.push(r.string().ok_or("ERR Failed loading library code")?);
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn a_dump_parses_back() {
        let codes: Vec<&[u8]> = vec![b"#!lua name=a\nx", &[b'y'; 300]];
        let payload = dump(codes.iter().copied());
        let back = parse(&payload).expect("valid");
        assert_eq!(back, vec![codes[0].to_vec(), codes[1].to_vec()]);
        let mut broken = payload.clone();
        broken[3] ^= 1;
        assert!(parse(&broken).is_err());
    }

    #[test]
    fn lzf_back_references_expand() {
        // "abc" literally, then 6 bytes copied from 3 back: "abcabcabc".
        let input = [2, b'a', b'b', b'c', (4 << 5) as u8, 2];
        assert_eq!(
            lzf_decompress(&input, 9).as_deref(),
            Some(&b"abcabcabc"[..])
        );
    }
}
