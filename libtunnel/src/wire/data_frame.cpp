// DATA frame records: see data_frame.hpp for the layout.
//
// Send: DataWriter::begin() writes the header and the first packet whole;
// append() writes each further packet as a compressed record when an earlier
// packet of the frame (within kMaxRef records) has the same static header
// fields and the rebuild will be exact, else whole.
// Receive: parse_frame() calls count_records() to check the whole frame
// before a packet of it is used; DataReader then walks it again, rebuilding.
#include <tunnel/data_frame.hpp>
#include <tunnel/ip_packet.hpp>

#include "inet.hpp"

#include <cstring>

namespace tunnel::wire {
namespace {

using inet::be16;
using inet::put16;

constexpr std::uint8_t kProtoUdp = 17;
constexpr std::size_t kUdpHeader = 8;
constexpr std::uint8_t kCompressedBit = 0x80;
constexpr std::size_t kOutSlot = kMaxRefHeader + kMaxCompressedPayload;

std::size_t ip_header_len(std::uint8_t family) { return family == 4 ? 20 : 40; }
// Bytes of a compressed record before its payload, by its reference's family.
std::size_t fixed_len(std::uint8_t family) { return family == 4 ? 7 : 5; }

// Size of the full packet at the start of `rest` (from its own length
// field), 0 when it is not one well-formed packet that fits.
std::size_t full_len(std::span<const std::uint8_t> rest) {
  if (rest.size() < 6) return 0;
  std::size_t n = 0;
  switch (rest[0] >> 4) {
    case 4: n = be16(&rest[2]); break;
    case 6: n = 40 + std::size_t{be16(&rest[4])}; break;
    default: return 0;
  }
  if (n > rest.size() || !ip::well_formed(rest.first(n))) return 0;
  return n;
}

// 4 or 6 when the well-formed `pkt` may lend its headers to a compressed
// record: a whole UDP datagram with a plain header (IPv4 without options, not
// a fragment; IPv6 with UDP as the first next header). 0 otherwise.
std::uint8_t ref_family(std::span<const std::uint8_t> pkt) {
  if ((pkt[0] >> 4) == 4)
    return pkt[0] == 0x45 && pkt.size() >= 28 && pkt[9] == kProtoUdp && (be16(&pkt[6]) & 0x3fff) == 0 ? 4 : 0;
  return pkt.size() >= 48 && pkt[6] == kProtoUdp ? 6 : 0;
}

// The fields a compressed record takes from its reference: every header
// byte but the lengths, the IPv4 ID and header checksum, and the UDP checksum.
bool same_static_fields(std::uint8_t family, const std::uint8_t* a, const std::uint8_t* b) {
  if (family == 4)
    return a[0] == b[0] && a[1] == b[1] && std::memcmp(a + 6, b + 6, 4) == 0 &&  // TOS; frag, TTL, protocol
           std::memcmp(a + 12, b + 12, 12) == 0;                                 // addresses, ports
  return std::memcmp(a, b, 4) == 0 &&        // version, traffic class, flow label
         std::memcmp(a + 6, b + 6, 38) == 0;  // next header, hop limit, addresses, ports
}

// True when a reader rebuilding `pkt` from its static fields gets it back
// byte for byte: lengths agree, the IPv4 checksum is the one it computes.
bool rebuilds_exactly(std::uint8_t family, std::span<const std::uint8_t> pkt) {
  const std::size_t ihl = ip_header_len(family);
  if (pkt.size() - ihl - kUdpHeader > kMaxCompressedPayload) return false;
  if (be16(&pkt[ihl + 4]) != pkt.size() - ihl) return false;
  return family == 6 || be16(&pkt[10]) == inet::ipv4_header_checksum(pkt.data());
}

}  // namespace

std::size_t count_records(std::span<const std::uint8_t> records) noexcept {
  std::array<std::uint8_t, kMaxRef + 1> family{};
  std::size_t i = 0, off = 0;
  while (off < records.size()) {
    const auto rest = records.subspan(off);
    if (rest[0] & kCompressedBit) {
      if (rest.size() < 3) return 0;
      const std::size_t payload = be16(&rest[0]) & kMaxCompressedPayload, ref = rest[2];
      if (ref == 0 || ref > i) return 0;
      const std::uint8_t f = family[(i - ref) & kMaxRef];
      if (f == 0 || rest.size() < fixed_len(f) + payload) return 0;
      family[i & kMaxRef] = f;
      off += fixed_len(f) + payload;
    } else {
      const std::size_t n = full_len(rest);
      if (n == 0) return 0;
      family[i & kMaxRef] = ref_family(rest.first(n));
      off += n;
    }
    ++i;
  }
  return i;
}

// ---------------------------------------------------------------- writer

std::size_t DataWriter::begin(std::uint8_t* out, std::uint64_t dsn, std::span<const std::uint8_t> pkt) noexcept {
  nflows_ = victim_ = records_ = compressed_ = 0;
  const std::size_t n = write_record(out + kDataHeaderSize, pkt);
  encode_data_header(out, dsn, n, version_);
  return kDataHeaderSize + n;
}

std::size_t DataWriter::append(std::uint8_t* frame, std::size_t frame_len, std::span<const std::uint8_t> pkt) noexcept {
  const std::size_t n = write_record(frame + frame_len, pkt);
  encode_header(frame, FrameType::data, 0, static_cast<std::uint32_t>(frame_len + n - kHeaderSize), frame[0]);
  return n;
}

std::size_t DataWriter::write_record(std::uint8_t* out, std::span<const std::uint8_t> pkt) noexcept {
  const std::size_t idx = records_++;
  const std::uint8_t family = compress_ ? ref_family(pkt) : 0;
  if (family) {
    const std::size_t ihl = ip_header_len(family), hl = ihl + kUdpHeader;
    Flow* match = nullptr;
    for (std::size_t k = 0; k < nflows_ && !match; ++k) {
      Flow& f = flows_[k];
      if (f.family == family && idx - f.index <= kMaxRef && same_static_fields(family, f.hdr.data(), pkt.data()))
        match = &f;
    }
    if (match && rebuilds_exactly(family, pkt)) {
      const std::size_t payload = pkt.size() - hl;
      put16(out, 0x8000 | static_cast<std::uint32_t>(payload));
      out[2] = static_cast<std::uint8_t>(idx - match->index);
      std::uint8_t* p = out + 3;
      if (family == 4) {
        std::memcpy(p, &pkt[4], 2);  // IPv4 identification
        p += 2;
      }
      std::memcpy(p, &pkt[ihl + 6], 2);  // UDP checksum
      p += 2;
      std::memcpy(p, &pkt[hl], payload);
      match->index = idx;
      ++compressed_;
      return static_cast<std::size_t>(p - out) + payload;
    }
    // Sent whole; it becomes its flow's reference (a new flow takes a slot,
    // the oldest slot when all are taken).
    Flow& f = match ? *match : flows_[nflows_ < kFlows ? nflows_++ : victim_++ % kFlows];
    std::memcpy(f.hdr.data(), pkt.data(), hl);
    f.family = family;
    f.index = idx;
  }
  std::memcpy(out, pkt.data(), pkt.size());
  return pkt.size();
}

// ---------------------------------------------------------------- reader

DataReader::DataReader() : hdrs_(std::make_unique<std::uint8_t[]>((kMaxRef + 1) * kMaxRefHeader)) {}

void DataReader::start(std::span<const std::uint8_t> records) noexcept {
  rest_ = records;
  index_ = 0;
}

std::span<const std::uint8_t> DataReader::next() noexcept {
  if (rest_.empty()) return {};
  const std::size_t slot = index_ & kMaxRef;
  std::span<const std::uint8_t> pkt;
  std::uint8_t family = 0;
  if (rest_[0] & kCompressedBit) {
    const std::size_t payload = rest_.size() >= 3 ? be16(&rest_[0]) & kMaxCompressedPayload : 0;
    const std::size_t ref = rest_.size() >= 3 ? rest_[2] : 0;
    family = ref && ref <= index_ ? family_[(index_ - ref) & kMaxRef] : 0;
    if (family == 0 || rest_.size() < fixed_len(family) + payload) {
      rest_ = {};
      return {};
    }
    if (!out_) out_ = std::make_unique<std::uint8_t[]>(2 * kOutSlot);
    std::uint8_t* o = out_.get() + turn_ * kOutSlot;
    turn_ ^= 1;
    const std::size_t ihl = ip_header_len(family), hl = ihl + kUdpHeader;
    const std::uint8_t* q = rest_.data() + 3;
    std::memcpy(o, hdrs_.get() + ((index_ - ref) & kMaxRef) * kMaxRefHeader, hl);
    if (family == 4) {
      put16(o + 2, static_cast<std::uint32_t>(hl + payload));
      std::memcpy(o + 4, q, 2);
      q += 2;
      put16(o + 10, inet::ipv4_header_checksum(o));
    } else {
      put16(o + 4, static_cast<std::uint32_t>(kUdpHeader + payload));
    }
    put16(o + ihl + 4, static_cast<std::uint32_t>(kUdpHeader + payload));
    std::memcpy(o + ihl + 6, q, 2);
    std::memcpy(o + hl, q + 2, payload);
    pkt = {o, hl + payload};
    rest_ = rest_.subspan(fixed_len(family) + payload);
  } else {
    const std::size_t n = full_len(rest_);
    if (n == 0) {
      rest_ = {};
      return {};
    }
    pkt = rest_.first(n);
    rest_ = rest_.subspan(n);
    family = ref_family(pkt);
  }
  family_[slot] = family;
  if (family) std::memcpy(hdrs_.get() + slot * kMaxRefHeader, pkt.data(), ip_header_len(family) + kUdpHeader);
  ++index_;
  return pkt;
}

}  // namespace tunnel::wire
