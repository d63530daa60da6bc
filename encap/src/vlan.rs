//! 802.1Q (C-tag, TPID 0x8100) and 802.1ad (S-tag, TPID 0x88a8) tags, and the in-place
//! push / pop / translate operations.
//!
//! A tag sits between the source MAC and the EtherType:
//!
//! ```text
//!  0        6        12     14                16     18
//! +--------+--------+------+--------------------+------+---------
//! | dst    | src    | TPID | PCP(3) DEI(1) VID(12) | type | payload
//! +--------+--------+------+--------------------+------+---------
//! ```
//!
//! The view [`Packet`] covers the 4 bytes after the TPID (TCI and the next type), the way
//! the TPID is read as the Ethernet header's EtherType. VID 0 marks a priority-tagged frame
//! (no VLAN), VID 4095 is reserved: it is refused on parse and can never be emitted,
//! because [`VlanId`] cannot hold it.
//!
//! Push and pop move only the 12 MAC bytes, never the payload (VPP's way).

use crate::error::{Error, ErrorKind, Layer};
use crate::ethernet::EtherType;
use crate::frame::Frame;
use crate::types::{Pcp, VlanId};
use crate::{ETH_HLEN, ETH_ZLEN};

/// Length of a tag (TPID + TCI).
pub const TAG_LEN: usize = 4;
/// Length of the view: TCI + next EtherType.
pub const HEADER_LEN: usize = 4;

mod field {
    use core::ops::Range;
    pub const TCI: Range<usize> = 0..2;
    pub const TYPE: Range<usize> = 2..4;
}

/// Which tag: 802.1Q customer tag or 802.1ad service tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tpid {
    /// 0x8100
    #[default]
    Dot1Q,
    /// 0x88a8
    Dot1Ad,
}

impl Tpid {
    /// The TPID value.
    #[inline]
    pub const fn value(self) -> u16 {
        match self {
            Tpid::Dot1Q => 0x8100,
            Tpid::Dot1Ad => 0x88a8,
        }
    }

    /// The TPID for `v`, if it is one.
    #[inline]
    pub const fn from_value(v: u16) -> Option<Self> {
        match v {
            0x8100 => Some(Tpid::Dot1Q),
            0x88a8 => Some(Tpid::Dot1Ad),
            _ => None,
        }
    }
}

impl From<Tpid> for EtherType {
    fn from(t: Tpid) -> EtherType {
        match t {
            Tpid::Dot1Q => EtherType::Vlan,
            Tpid::Dot1Ad => EtherType::QinQ,
        }
    }
}

/// A whole tag: TPID and TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// 0x8100 or 0x88a8.
    pub tpid: Tpid,
    /// Priority code point.
    pub pcp: Pcp,
    /// Drop eligible indicator.
    pub dei: bool,
    /// The VLAN; `None` for a priority tag (VID 0).
    pub vid: Option<VlanId>,
}

impl VlanTag {
    /// An 802.1Q tag for `vid` with priority 0.
    #[inline]
    pub const fn dot1q(vid: VlanId) -> Self {
        VlanTag {
            tpid: Tpid::Dot1Q,
            pcp: Pcp::from_bits(0),
            dei: false,
            vid: Some(vid),
        }
    }

    /// The 16-bit TCI.
    #[inline]
    pub fn tci(&self) -> u16 {
        u16::from(self.pcp.get()) << 13
            | u16::from(self.dei) << 12
            | self.vid.map_or(0, VlanId::get)
    }

    /// Decodes a TCI; VID 4095 is refused.
    #[inline]
    pub fn from_tci(tpid: Tpid, tci: u16) -> Result<Self, Error> {
        let vid = tci & 0x0fff;
        let vid = match vid {
            0 => None,
            0x0fff => return Err(Error::new(Layer::Vlan, ErrorKind::BadValue)),
            v => {
                Some(VlanId::try_new(v).map_err(|_| Error::new(Layer::Vlan, ErrorKind::BadValue))?)
            }
        };
        Ok(VlanTag {
            tpid,
            pcp: Pcp::from_bits((tci >> 13) as u8),
            dei: tci & 0x1000 != 0,
            vid,
        })
    }
}

/// A view of the 4 bytes after a TPID: TCI and the next EtherType.
#[derive(Debug, Clone)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without a length check.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps after checking the length.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(Error::truncated(Layer::Vlan, HEADER_LEN, have));
        }
        Ok(Packet { buffer })
    }

    /// The raw TCI.
    #[inline]
    pub fn tci(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::TCI];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Priority code point.
    #[inline]
    pub fn pcp(&self) -> Pcp {
        Pcp::from_bits((self.tci() >> 13) as u8)
    }

    /// Drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// Raw 12-bit VID (0 = priority tag, 4095 = reserved).
    #[inline]
    pub fn vid_raw(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType after the tag (or the next TPID).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::TYPE];
        u16::from_be_bytes([b[0], b[1]]).into()
    }

    /// Everything after the view.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TCI.
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the VID, keeping PCP and DEI.
    #[inline]
    pub fn set_vid(&mut self, vid: VlanId) {
        let tci = (self.tci() & 0xf000) | vid.get();
        self.set_tci(tci);
    }

    /// Sets the next EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::TYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }
}

/// A parsed tag view: the tag's TCI fields and the EtherType that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanRepr {
    /// Priority code point.
    pub pcp: Pcp,
    /// Drop eligible indicator.
    pub dei: bool,
    /// The VLAN, `None` for a priority tag.
    pub vid: Option<VlanId>,
    /// EtherType after the tag.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Parses the view; VID 4095 is refused.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        let tag = VlanTag::from_tci(Tpid::Dot1Q, p.tci())?;
        Ok(VlanRepr {
            pcp: tag.pcp,
            dei: tag.dei,
            vid: tag.vid,
            ethertype: p.ethertype(),
        })
    }

    /// Length of the view: 4.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the view.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let tag = VlanTag {
            tpid: Tpid::Dot1Q,
            pcp: self.pcp,
            dei: self.dei,
            vid: self.vid,
        };
        p.set_tci(tag.tci());
        p.set_ethertype(self.ethertype);
    }
}

/// The outermost tag of `frame`, if it has one (`Ok(None)` for an untagged frame).
#[inline]
pub fn outer_tag(frame: &[u8]) -> Result<Option<VlanTag>, Error> {
    if frame.len() < ETH_HLEN {
        return Err(Error::truncated(Layer::Ethernet, ETH_HLEN, frame.len()));
    }
    let Some(tpid) = Tpid::from_value(u16::from_be_bytes([frame[12], frame[13]])) else {
        return Ok(None);
    };
    if frame.len() < ETH_HLEN + TAG_LEN {
        return Err(Error::truncated(
            Layer::Vlan,
            ETH_HLEN + TAG_LEN,
            frame.len(),
        ));
    }
    VlanTag::from_tci(tpid, u16::from_be_bytes([frame[14], frame[15]])).map(Some)
}

/// Inserts `tag` as the outermost tag of the frame: the 12 MAC bytes move 4 bytes into
/// the headroom, the tag is written after them. An S-tag pushed on a C-tagged frame makes
/// a QinQ frame.
#[inline]
pub fn push<B: AsRef<[u8]> + AsMut<[u8]>>(frame: &mut Frame<B>, tag: VlanTag) -> Result<(), Error> {
    if frame.len() < ETH_HLEN {
        return Err(Error::truncated(Layer::Ethernet, ETH_HLEN, frame.len()));
    }
    let s = frame.with_headroom_mut(TAG_LEN)?;
    s.copy_within(TAG_LEN..TAG_LEN + 12, 0);
    s[12..14].copy_from_slice(&tag.tpid.value().to_be_bytes());
    s[14..16].copy_from_slice(&tag.tci().to_be_bytes());
    frame.push_front(TAG_LEN)?;
    Ok(())
}

/// Removes the outermost tag and returns it; the frame is then zero-padded to 60 bytes
/// if the pop made it shorter. Untagged frames and VID 4095 are refused, and a refused
/// frame is left untouched.
#[inline]
pub fn pop<B: AsRef<[u8]> + AsMut<[u8]>>(frame: &mut Frame<B>) -> Result<VlanTag, Error> {
    let tag = outer_tag(frame.data())?.ok_or(Error::new(Layer::Vlan, ErrorKind::NotMatched))?;
    let new_len = frame.len() - TAG_LEN;
    // The 4 freed bytes end up in front of the frame, so the tailroom alone holds the padding.
    if new_len < ETH_ZLEN && ETH_ZLEN - new_len > frame.tailroom() {
        return Err(Error::new(Layer::Frame, ErrorKind::NoTailroom));
    }
    frame.data_mut().copy_within(0..12, TAG_LEN);
    frame.pull_front(TAG_LEN)?;
    frame.pad_to(ETH_ZLEN)?;
    Ok(tag)
}

/// Rewrites the VID of the outermost tag, keeping its TPID, PCP and DEI; returns the tag
/// as it was. Untagged frames and VID 4095 are refused.
#[inline]
pub fn translate<B: AsRef<[u8]> + AsMut<[u8]>>(
    frame: &mut Frame<B>,
    vid: VlanId,
) -> Result<VlanTag, Error> {
    let old = outer_tag(frame.data())?.ok_or(Error::new(Layer::Vlan, ErrorKind::NotMatched))?;
    let mut p = Packet::new_unchecked(&mut frame.data_mut()[ETH_HLEN..]);
    p.set_vid(vid);
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{arb_frame_bytes, framed};
    use proptest::prelude::*;

    // dst, src, 8100, TCI = PCP 5, DEI 1, VID 100 (0xb064), type 0800, payload.
    const TAGGED: [u8; 20] = [
        1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x81, 0x00, 0xb0, 0x64, 0x08, 0x00, 0xaa,
        0xbb,
    ];

    #[test]
    fn test_deconstruct() {
        let p = Packet::new_checked(&TAGGED[14..]).unwrap();
        assert_eq!(p.pcp().get(), 5);
        assert!(p.dei());
        assert_eq!(p.vid_raw(), 100);
        assert_eq!(p.ethertype(), EtherType::Ipv4);
        let r = VlanRepr::parse(&p).unwrap();
        assert_eq!(r.vid.map(VlanId::get), Some(100));
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn test_construct() {
        let mut b = [0u8; 4];
        VlanRepr {
            pcp: Pcp::try_new(5).unwrap(),
            dei: true,
            vid: Some(VlanId::try_new(100).unwrap()),
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, TAGGED[14..18]);
    }

    #[test]
    fn vid_4095_refused() {
        let mut t = TAGGED;
        t[14] = 0x0f;
        t[15] = 0xff;
        let p = Packet::new_checked(&t[14..]).unwrap();
        assert_eq!(VlanRepr::parse(&p).unwrap_err().kind, ErrorKind::BadValue);
        let mut f = framed(&t, 16, 64);
        assert!(pop(&mut f).is_err());
        assert_eq!(f.data(), &t[..], "a refused pop leaves the frame as it was");
    }

    #[test]
    fn pop_pads_to_60() {
        let mut f = framed(&TAGGED, 16, 64);
        let tag = pop(&mut f).unwrap();
        assert_eq!(tag.tci(), 0xb064);
        assert_eq!(tag.tpid, Tpid::Dot1Q);
        assert_eq!(f.len(), 60);
        assert_eq!(
            &f.data()[..16],
            &[1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 8, 0, 0xaa, 0xbb]
        );
        assert!(f.data()[16..].iter().all(|&b| b == 0));
    }

    #[test]
    fn push_priority_tag_and_qinq() {
        let base = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45];
        let mut f = framed(&base, 12, 16);
        let prio = VlanTag {
            tpid: Tpid::Dot1Q,
            pcp: Pcp::try_new(3).unwrap(),
            dei: false,
            vid: None,
        };
        push(&mut f, prio).unwrap();
        assert_eq!(&f.data()[12..16], &[0x81, 0x00, 0x60, 0x00]);
        let s = VlanTag {
            tpid: Tpid::Dot1Ad,
            pcp: Pcp::default(),
            dei: false,
            vid: Some(VlanId::try_new(4094).unwrap()),
        };
        push(&mut f, s).unwrap();
        assert_eq!(
            &f.data()[12..20],
            &[0x88, 0xa8, 0x0f, 0xfe, 0x81, 0x00, 0x60, 0x00]
        );
        assert_eq!(&f.data()[..12], &base[..12]);
        assert_eq!(&f.data()[20..], &base[12..]);
        assert!(push(&mut f, s).is_ok());
        assert_eq!(push(&mut f, s).unwrap_err().kind, ErrorKind::NoHeadroom);
    }

    #[test]
    fn translate_keeps_pcp_dei() {
        let mut f = framed(&TAGGED, 0, 0);
        let old = translate(&mut f, VlanId::try_new(4094).unwrap()).unwrap();
        assert_eq!(old.vid.map(VlanId::get), Some(100));
        assert_eq!(&f.data()[14..16], &[0xbf, 0xfe]);
    }

    proptest! {
        #[test]
        fn push_pop_identity(
            frame in arb_frame_bytes(60, 1600),
            pcp in 0u8..8, dei: bool, vid in prop::option::of(1u16..=4094), qinq: bool,
        ) {
            let tag = VlanTag {
                tpid: if qinq { Tpid::Dot1Ad } else { Tpid::Dot1Q },
                pcp: Pcp::try_new(pcp).unwrap(),
                dei,
                vid: vid.map(|v| VlanId::try_new(v).unwrap()),
            };
            let mut f = framed(&frame, 8, 8);
            push(&mut f, tag).unwrap();
            prop_assert_eq!(f.len(), frame.len() + 4);
            prop_assert_eq!(outer_tag(f.data()).unwrap(), Some(tag));
            prop_assert_eq!(pop(&mut f).unwrap(), tag);
            prop_assert_eq!(f.data(), &frame[..]);
        }

        #[test]
        fn translate_there_and_back(frame in arb_frame_bytes(60, 200), a in 1u16..=4094, b in 1u16..=4094) {
            let mut f = framed(&frame, 4, 0);
            push(&mut f, VlanTag::dot1q(VlanId::try_new(a).unwrap())).unwrap();
            let before = f.data().to_vec();
            translate(&mut f, VlanId::try_new(b).unwrap()).unwrap();
            prop_assert_eq!(outer_tag(f.data()).unwrap().and_then(|t| t.vid).map(VlanId::get), Some(b));
            translate(&mut f, VlanId::try_new(a).unwrap()).unwrap();
            prop_assert_eq!(f.data(), &before[..]);
        }

        #[test]
        fn ops_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80), head in 0usize..8, tail in 0usize..8) {
            let mut f = framed(&bytes, head, tail);
            let _ = pop(&mut f);
            let _ = translate(&mut f, VlanId::try_new(7).unwrap());
            let _ = push(&mut f, VlanTag::dot1q(VlanId::try_new(7).unwrap()));
            let _ = outer_tag(f.data());
        }
    }
}
