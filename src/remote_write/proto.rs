//! The remote write 1.0 wire format: Prometheus's `WriteRequest` protobuf,
//! written by hand as prost messages (no protoc at build time), and the
//! snappy block compression the protocol requires.
//!
//! Only the fields forewarn sends are declared: labels and float samples.
//! Staleness markers travel as the special NaN bit pattern, which protobuf's
//! `double` keeps bit for bit.

use prost::Message;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The request body: the protobuf, snappy block-compressed.
pub fn encode(req: &WriteRequest) -> Result<Vec<u8>, snap::Error> {
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec())
}

/// Why a request body could not be decoded: which layer failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("snappy: {0}")]
    Snappy(#[from] snap::Error),
    /// Not a `#[source]`: prost without its `std` feature does not
    /// implement `std::error::Error`.
    #[error("protobuf: {0}")]
    Protobuf(prost::DecodeError),
}

/// Decodes a body built by [`encode`] (tests and the bench's receiver).
pub fn decode(body: &[u8]) -> Result<WriteRequest, DecodeError> {
    let raw = snap::raw::Decoder::new().decompress_vec(body)?;
    WriteRequest::decode(raw.as_slice()).map_err(DecodeError::Protobuf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_the_stale_marker_bits() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![
                    Label { name: "__name__".into(), value: "up".into() },
                    Label { name: "job".into(), value: "a".into() },
                ],
                samples: vec![
                    Sample { value: 1.0, timestamp: 1_700_000_000_000 },
                    Sample { value: crate::store::stale_nan(), timestamp: 1_700_000_015_000 },
                ],
            }],
        };
        let body = encode(&req).unwrap();
        let back = decode(&body).unwrap();
        let s = &back.timeseries[0].samples;
        assert_eq!(s[0].value, 1.0);
        assert!(crate::store::is_stale(s[1].value));
        assert_eq!(back.timeseries[0].labels, req.timeseries[0].labels);
    }

    #[test]
    fn wire_bytes_match_the_protobuf_field_numbers() {
        // Label{name:"a", value:"b"} is 0x0a 0x01 'a' 0x12 0x01 'b'.
        let l = Label { name: "a".into(), value: "b".into() };
        assert_eq!(l.encode_to_vec(), vec![0x0a, 1, b'a', 0x12, 1, b'b']);
        // Sample{value:1.0, timestamp:2}: fixed64 field 1, varint field 2.
        let s = Sample { value: 1.0, timestamp: 2 };
        let mut want = vec![0x09];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 2]);
        assert_eq!(s.encode_to_vec(), want);
    }
}
