// Frame protection inside a link's protocol core (link_core.hpp): the small
// object LinkCore calls to seal what it sends and open what it receives on a
// protected connection (keys and wire layout: seal.hpp). Pure: no I/O, no
// clock, no allocation per frame (the stage starts at kStageFloor, doubles
// up to its high-water mark and is released by trim(), on a timer).
//
// Send: the core moves whole plain frames into the stage with add() (each
// sealed as it goes in, under the next counter nonce), writes pending() and
// reports what the socket took with consumed(). A partial send continues from
// the stage; the frames themselves stay unsealed in the replay buffer, so a
// replay after a resume is sealed again under the new connection's keys.
//
// Receive: open() is given the unparsed bytes at the start of a frame; once a
// whole sealed frame is there it is opened in place, and its first `plain`
// bytes are a frame for wire::parse_frame.
#pragma once

#include <tunnel/seal.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace tunnel {

class FrameGuard {
 public:
  // Plain bytes staged per output() at most (one frame more may overshoot).
  static constexpr std::size_t kStageBytes = 64 * 1024;
  // The stage's first size: a heartbeat or an ACK fits, so an idle link's
  // stage, once trimmed, stays this small without churning.
  static constexpr std::size_t kStageFloor = 1024;

  explicit FrameGuard(seal::LinkCrypto crypto) : c_(std::move(crypto)) {}
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;

  // ---- send
  // Seals the whole plain frame `frame` (header + body as the encoders write
  // it) onto the end of the stage. Anything but ok is final for the connection.
  seal::Status add(std::span<const std::uint8_t> frame);
  // Sealed bytes not yet taken by the socket.
  std::span<const std::uint8_t> pending() const { return {stage_.get() + off_, len_ - off_}; }
  bool staged() const { return off_ < len_; }
  std::size_t staged_bytes() const { return len_ - off_; }
  void consumed(std::size_t n);
  // Releases the stage's memory when nothing waits in it and it grew past
  // kStageFloor (a stage at the floor is kept: no allocation per heartbeat).
  void trim();
  std::size_t capacity() const { return cap_; }

  // ---- receive
  struct Opened {
    bool need_more = false;  // no whole sealed frame yet
    seal::Status status = seal::Status::ok;
    std::size_t plain = 0;   // bytes of the opened frame (header + body)
    std::size_t sealed = 0;  // bytes it took on the wire (to skip)
  };
  // `in` starts at a frame boundary of the received stream; `max_body` is the
  // largest plain body accepted (wire::Limits::max_body).
  Opened open(std::span<std::uint8_t> in, std::size_t max_body);

  std::uint64_t sealed_frames() const { return c_.sealer.frames(); }
  std::uint64_t opened_frames() const { return c_.opener.frames(); }

 private:
  seal::LinkCrypto c_;
  std::unique_ptr<std::uint8_t[]> stage_;
  std::size_t cap_ = 0, len_ = 0, off_ = 0;
};

}  // namespace tunnel
