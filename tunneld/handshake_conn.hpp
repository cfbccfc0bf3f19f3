// A connection during the handshake: reads one whole frame at a time with a
// deadline, and writes small frames. Once the handshake is done the socket
// and any bytes read past the last handshake frame move to a Session.
#pragma once

#include <tunnel/wire.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tunneld {

class HandshakeConn : public std::enable_shared_from_this<HandshakeConn> {
 public:
  // status ok: `f` is the frame (valid until the next read). Otherwise `why`
  // says what went wrong: a parse error, the deadline, or the socket.
  using OnFrame = std::function<void(tunnel::wire::ParseStatus status, const tunnel::wire::Frame& f,
                                     const std::string& why)>;

  HandshakeConn(boost::asio::ip::tcp::socket sock, std::string peer);

  // Reads the next frame; `deadline` bounds the whole handshake (set once).
  void read_frame(OnFrame cb);
  void set_deadline(std::chrono::milliseconds d);
  // Sends a whole frame now. False if the socket did not take it at once
  // (a handshake frame is tiny and the socket's buffer is empty).
  bool send_frame(tunnel::wire::FrameType type, const std::vector<std::uint8_t>& body);
  bool send_error(std::string_view reason);
  void close();

  // Hands over the socket and the bytes after the last frame read.
  boost::asio::ip::tcp::socket take_socket() { timer_.cancel(); return std::move(sock_); }
  std::vector<std::uint8_t> leftover() const;
  const std::string& peer() const { return peer_; }
  bool open() const { return sock_.is_open(); }

 private:
  void on_readable();
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  std::string peer_;
  std::vector<std::uint8_t> buf_;
  std::size_t len_ = 0, consumed_ = 0;
  OnFrame cb_;
  bool timed_out_ = false;
};

}  // namespace tunneld
