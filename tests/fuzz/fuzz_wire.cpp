// libFuzzer target for the frame codec: parse a stream of frames the way the
// receiver does, and check the invariants a caller relies on.
#include <tunnel/ip_packet.hpp>
#include <tunnel/wire.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace w = tunnel::wire;
  w::Limits limits;
  if (size > 0) limits.max_body = w::kDsnSize + 20 + (data[0] * 257u);  // vary the receiver's limit
  std::size_t off = 0;
  while (off < size) {
    const auto r = w::parse_frame({data + off, size - off}, limits);
    if (r.status != w::ParseStatus::ok) break;
    if (r.consumed < w::kHeaderSize || r.consumed > size - off) std::abort();
    if (r.frame.body.data() < data + off || r.frame.body.data() + r.frame.body.size() > data + off + r.consumed)
      std::abort();
    if (r.frame.type == w::FrameType::data && !tunnel::ip::well_formed(r.frame.body)) std::abort();
    (void)tunnel::ip::classify(r.frame.body);
    off += r.consumed;
  }
  return 0;
}
