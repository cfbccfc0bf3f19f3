// A connection during the handshake: reads one whole frame at a time under a
// deadline and writes small frames. Once the handshake is done the socket
// and any bytes read past the last handshake frame move to a Link.
//
// Owned through a shared_ptr: pending waits hold one, so the object lives
// until they have run; close() ends them (their callback is not called).
#pragma once

#include <tunnel/fault.hpp>
#include <tunnel/wire.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tunnel {

class HandshakeConn : public std::enable_shared_from_this<HandshakeConn> {
 public:
  // Fault::none: `f` is the next frame (valid until the next read_frame()).
  // Otherwise why none came (handshake_timeout, closed_in_handshake,
  // socket_error, malformed_frame), `detail` saying more for the log.
  using OnFrame = std::function<void(Fault fault, const wire::Frame& f, std::string_view detail)>;

  HandshakeConn(boost::asio::ip::tcp::socket sock, std::string peer);

  // The whole handshake must be done within `d` of this call.
  void set_deadline(std::chrono::milliseconds d);
  // Reads the next frame of a version in [min_version, max_version].
  void read_frame(std::uint8_t min_version, std::uint8_t max_version, OnFrame cb);
  // Sends a whole frame now. False if the socket did not take it at once
  // (a handshake frame is small and the socket's buffer is empty).
  bool send_frame(wire::FrameType type, std::uint8_t version, const std::vector<std::uint8_t>& body);
  bool send_error(std::string_view reason, std::uint8_t version);
  void close();

  // Hands over the socket and the bytes after the last frame read.
  boost::asio::ip::tcp::socket take_socket();
  std::vector<std::uint8_t> leftover() const;
  const std::string& peer() const { return peer_; }
  // Why the last frame was refused (malformed_frame, unsupported_version).
  wire::ParseStatus parse_status() const { return parse_; }
  bool open() const { return sock_.is_open(); }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  void on_readable();
  void finish(Fault f, const wire::Frame& fr, std::string_view detail);

  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  std::string peer_;
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0, consumed_ = 0;
  wire::Limits limits_;
  OnFrame cb_;
  wire::ParseStatus parse_ = wire::ParseStatus::ok;
  bool timed_out_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace tunnel
