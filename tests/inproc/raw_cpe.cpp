#include "raw_cpe.hpp"

#include <tunnel/suite.hpp>

#include <boost/asio/write.hpp>

#include <array>
#include <span>

namespace inproc {
namespace asio = boost::asio;
namespace hs = tunnel::hs;
namespace wire = tunnel::wire;

RawCpe::RawCpe(asio::io_context& io, asio::ip::tcp::endpoint gateway) : io_(io), sock_(io) {
  sock_.connect(gateway);
  sock_.non_blocking(true);
}

std::optional<RawCpe::Frame> RawCpe::next(std::chrono::milliseconds limit) {
  const wire::Limits any{wire::kMaxBody, wire::kMinVersion, wire::kVersion};
  std::optional<Frame> out;
  auto take = [&] {
    const wire::ParseResult r = wire::parse_frame(buf_, any);
    if (r.status != wire::ParseStatus::ok) return false;
    // The whole body as sent (DATA and ACK frames are never expected here).
    const auto body = std::span<const std::uint8_t>(buf_).subspan(wire::kHeaderSize, r.consumed - wire::kHeaderSize);
    out = Frame{r.frame.type, r.frame.version, Bytes(body.begin(), body.end())};
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(r.consumed));
    return true;
  };
  run_until(io_, [&] {
    if (take()) return true;
    std::array<std::uint8_t, 4096> b{};
    boost::system::error_code ec;
    const std::size_t n = ended_ ? 0 : sock_.read_some(asio::buffer(b), ec);
    buf_.insert(buf_.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec && ec != asio::error::would_block) ended_ = true;
    return take() || ended_;
  }, limit);
  return out;
}

std::optional<hs::Challenge> RawCpe::challenge() {
  const auto f = next();
  if (!f || f->type != wire::FrameType::challenge) return std::nullopt;
  std::string why;
  auto c = hs::decode_challenge(f->body, why);
  if (c) server_nonce_ = c->nonce;
  return c;
}

hs::Hello RawCpe::hello_for(std::string id, const char* prefix) {
  hs::Hello h;
  h.nonce = hs::random_nonce();
  h.id = std::move(id);
  h.prefixes = {tunnel::parse_prefix(prefix)};
  const tunnel::SuiteBytes offer = tunnel::offer_suite(true, {});
  h.cipher = offer.cipher;
  h.protection = offer.protection;
  return h;
}

void RawCpe::hello(const hs::Hello& h, std::uint8_t version, hs::KeyView key) {
  std::vector<std::uint8_t> body;
  hs::encode(h, version, body);
  hs::sign_hello(body, version, key, server_nonce_);
  Bytes frame(wire::kHeaderSize);
  wire::encode_header(frame.data(), wire::FrameType::hello, 0, static_cast<std::uint32_t>(body.size()), version);
  frame.insert(frame.end(), body.begin(), body.end());
  send(frame);
}

void RawCpe::send(const Bytes& raw) {
  sock_.non_blocking(false);
  asio::write(sock_, asio::buffer(raw));
  sock_.non_blocking(true);
}

std::optional<std::string> RawCpe::refusal(std::uint8_t* version) {
  std::optional<std::string> reason;
  while (auto f = next()) {
    if (f->type != wire::FrameType::error || reason) continue;
    reason.emplace(f->body.begin(), f->body.end());
    if (version) *version = f->version;
  }
  return reason;
}

}  // namespace inproc
