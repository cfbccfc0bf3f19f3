// libFuzzer target for the realtime-class parsers: the input is read as a raw
// IP packet (inspect, then the classifier with a few rules), as operator
// text (parse_rule, parse_path_spec, parse_rate), and as realtime frame
// bodies (parse_rt_data, parse_probe). Nothing may crash, read out of bounds
// or report a spec that contradicts its own error.
#include <tunnel/class_rules.hpp>
#include <tunnel/classifier.hpp>
#include <tunnel/first_copy.hpp>
#include <tunnel/path_rate.hpp>
#include <tunnel/realtime_wire.hpp>

#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace tunnel;
  const std::span<const std::uint8_t> in(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  static const classify::Rule rules[] = {classify::parse_rule("realtime:proto=udp,dport=3478-3481").rule,
                                         classify::parse_rule("bulk:dst=fd00::/8").rule};
  static classify::Classifier c([] {
    classify::ClassifierConfig cfg;
    cfg.rules = rules;
    cfg.capacity = 64;
    return cfg;
  }());
  static auto now = classify::Clock::time_point{} + std::chrono::seconds(1);
  now += std::chrono::milliseconds(size % 50);
  c.classify(in, now);
  classify::FlowInfo flows[4];
  if (c.snapshot(flows, now) > 4) std::abort();

  const auto r = classify::parse_rule(text);
  if (r.error != classify::RuleError::ok && r.at > size) std::abort();
  if (r.error == classify::RuleError::ok && (r.rule.sport.lo > r.rule.sport.hi || r.rule.dport.lo > r.rule.dport.hi)) std::abort();
  const auto p = parse_path_spec(text);
  if (p.error == RateError::ok && (p.spec.name.empty() || p.spec.name.size() > 15)) std::abort();
  if (parse_rate(text) > 1'000'000'000'000ull) std::abort();

  realtime::RtData d;
  if (realtime::parse_rt_data(in, d) == realtime::BodyError::ok && d.packet.size() + realtime::kRseqSize != size) std::abort();
  realtime::Probe pr;
  if (realtime::parse_probe(in, pr) == realtime::BodyError::ok && size != realtime::kProbeBodySize) std::abort();
  static realtime::FirstCopyFilter f;
  if (size >= 8) {
    std::uint64_t s = 0;
    for (int i = 0; i < 8; ++i) s = s << 8 | data[i];
    f.accept(s % (1u << 20));
  }
  return 0;
}
