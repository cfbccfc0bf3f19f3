// libFuzzer target for the frame codec: parse a stream of frames the way the
// receiver does, read every DATA frame's packets back, and check the
// invariants a caller relies on.
#include <tunnel/data_frame.hpp>
#include <tunnel/ip_packet.hpp>
#include <tunnel/wire.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace w = tunnel::wire;
  w::Limits limits;
  if (size > 0) limits.max_body = w::kDsnSize + 20 + (data[0] * 257u);  // vary the receiver's limit
  static w::DataReader reader;
  std::size_t off = 0;
  while (off < size) {
    const auto r = w::parse_frame({data + off, size - off}, limits);
    if (r.status != w::ParseStatus::ok) break;
    if (r.consumed < w::kHeaderSize || r.consumed > size - off) std::abort();
    if (r.frame.body.data() < data + off || r.frame.body.data() + r.frame.body.size() > data + off + r.consumed)
      std::abort();
    if (r.frame.type == w::FrameType::data) {
      // Every record the parser accepted reads back as one well-formed packet.
      reader.start(r.frame.body);
      std::size_t n = 0;
      for (auto p = reader.next(); !p.empty(); p = reader.next(), ++n) {
        if (!tunnel::ip::well_formed(p)) std::abort();
        (void)tunnel::ip::classify(p);
      }
      if (n != r.frame.packets || n == 0) std::abort();
    }
    off += r.consumed;
  }
  return 0;
}
