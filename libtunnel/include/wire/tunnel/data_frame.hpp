// The body of a DATA frame (docs/protocol.md, "DATA"): the data sequence
// number of its first packet, then one or more records, packet i having
// dsn + i. A record is either
//
//   a full packet:  an IPv4 or IPv6 packet, unchanged; its own length field
//                   (IPv4 total length, IPv6 40 + payload length) sizes it, and
//                   its first byte's version nibble (4 or 6) marks it;
//   a compressed    1|payload length (15 bits) . ref (8) . [IPv4 ID (16)] .
//   UDP datagram:   UDP checksum (16) . UDP payload
//                   whose IP and UDP headers are those of the packet `ref`
//                   records earlier in the same frame, with the lengths set
//                   for this payload, the IPv4 ID and header checksum and the
//                   UDP checksum replaced. The ID field is there only when
//                   that packet is IPv4.
//
// A frame is self-contained: no state carries from one frame to the next, so
// frames can be dropped, replayed or resent on another connection freely.
// The writer compresses only what the reader rebuilds byte for byte.
//
// Pure: no I/O, no logging, no allocation per packet.
#pragma once

#include <tunnel/wire.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace tunnel::wire {

// Farthest back a compressed record may refer.
inline constexpr std::size_t kMaxRef = 255;
// Largest UDP payload a compressed record carries; larger datagrams go full.
inline constexpr std::size_t kMaxCompressedPayload = 0x7fff;
// Bytes of IP and UDP header a reference lends (IPv6 + UDP).
inline constexpr std::size_t kMaxRefHeader = 48;

// Checks every record of a DATA body after its dsn: each full packet is well
// formed, each compressed record refers to an earlier UDP packet of this frame
// that may serve as a reference, and the records fill the body exactly.
// Returns the number of packets, 0 when the records are malformed.
std::size_t count_records(std::span<const std::uint8_t> records) noexcept;

// Builds one DATA frame, packet by packet, in memory the caller owns. The
// frame may move between calls (the caller passes where it is now); the
// writer keeps copies of the headers it may compress against, never pointers.
class DataWriter {
 public:
  explicit DataWriter(bool compress = true) : compress_(compress) {}

  // Starts a frame at `out` with `pkt` (a well-formed IP packet) as its first
  // packet, numbered `dsn`. `out` must hold kDataHeaderSize + pkt.size()
  // bytes. Returns the frame's size.
  std::size_t begin(std::uint8_t* out, std::uint64_t dsn, std::span<const std::uint8_t> pkt) noexcept;

  // Appends `pkt` to the frame begin() started, now at `frame` and
  // `frame_len` bytes long; `frame + frame_len` must hold pkt.size() bytes,
  // and the caller keeps the body within the receiver's limit. Updates the
  // frame's length field. Returns the bytes appended (at most pkt.size()).
  std::size_t append(std::uint8_t* frame, std::size_t frame_len, std::span<const std::uint8_t> pkt) noexcept;

  // The version byte of frames begin() starts from now on (append() keeps
  // the frame's own).
  void set_version(std::uint8_t v) { version_ = v; }

  std::size_t packets() const { return records_; }
  std::size_t compressed() const { return compressed_; }  // of those, sent as compressed records

 private:
  struct Flow {
    std::array<std::uint8_t, kMaxRefHeader> hdr;  // the flow's IP and UDP headers
    std::uint8_t family = 0;                     // 4 or 6
    std::size_t index = 0;                       // record index of its last packet
  };
  static constexpr std::size_t kFlows = 8;

  std::size_t write_record(std::uint8_t* out, std::span<const std::uint8_t> pkt) noexcept;

  bool compress_;
  std::uint8_t version_ = kVersion;
  std::array<Flow, kFlows> flows_{};
  std::size_t nflows_ = 0, victim_ = 0;
  std::size_t records_ = 0, compressed_ = 0;
};

// Gives back the packets of a DATA frame that parse_frame() accepted, in
// order, rebuilding compressed ones in memory of its own (64 KiB, allocated
// at the first compressed record).
class DataReader {
 public:
  DataReader();

  // `records`: Frame::body of an accepted DATA frame; it must stay valid
  // while packets are read.
  void start(std::span<const std::uint8_t> records) noexcept;

  // The next packet, or an empty span after the last one (or at a record
  // that is not well formed, which parse_frame() would have refused). A full
  // packet points into the frame; a rebuilt one stays valid until next() is
  // called twice more, so it may be handed to TunPort::write().
  std::span<const std::uint8_t> next() noexcept;

 private:
  std::span<const std::uint8_t> rest_;
  std::size_t index_ = 0;
  std::unique_ptr<std::uint8_t[]> hdrs_;     // (kMaxRef + 1) headers, by record index
  std::array<std::uint8_t, kMaxRef + 1> family_{};  // 4, 6, or 0: that record cannot be a reference
  std::unique_ptr<std::uint8_t[]> out_;      // two rebuilt packets, used in turn
  unsigned turn_ = 0;
};

}  // namespace tunnel::wire
