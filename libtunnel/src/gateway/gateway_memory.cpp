// The gateway's memory limit (gateway.hpp, GatewayConfig::memory_limit):
// summing the sessions' buffer memory on the tick and shedding over it.
#include <tunnel/control_hub.hpp>
#include <tunnel/gateway.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace tunnel {

void Gateway::account_memory() {
  std::size_t sum = 0;
  const control::ControlHub* hub = control();
  for (auto& [sid, s] : sessions_) sum += s->memory_bytes() + (hub ? hub->memory(*s) : 0);
  memory_ = sum;
  dc_.memory_bytes = sum;
  const std::size_t limit = gcfg_.memory_limit;
  if (!limit || sum <= limit) return;
  // Shed the oldest frame of all links first, until what was dropped covers
  // the excess; then give the memory back. A heap of links by the age of
  // their oldest frame: allocated on the tick, and only when over the limit.
  using Item = std::pair<std::int64_t, LinkCore*>;
  std::vector<Item> heap;
  for (auto& [sid, s] : sessions_)
    for (auto& l : s->links())
      if (l && l->core().oldest_frame_ms() >= 0) heap.emplace_back(l->core().oldest_frame_ms(), &l->core());
  const auto later = [](const Item& a, const Item& b) { return a.first > b.first; };
  std::make_heap(heap.begin(), heap.end(), later);
  std::size_t freed = 0;
  std::vector<LinkCore*> touched;
  while (freed < sum - limit && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    LinkCore* c = heap.back().second;
    heap.pop_back();
    const std::size_t n = c->shed();
    if (!n) continue;  // its front is partly sent: leave the link alone
    freed += n;
    if (touched.empty() || touched.back() != c) touched.push_back(c);
    if (c->oldest_frame_ms() >= 0) {
      heap.emplace_back(c->oldest_frame_ms(), c);
      std::push_heap(heap.begin(), heap.end(), later);
    }
  }
  for (LinkCore* c : touched) c->trim_now();
  if (freed)
    spdlog::warn("memory limit {} bytes: buffers held {}; shed {} bytes of the oldest frames", limit, sum, freed);
}

}  // namespace tunnel
