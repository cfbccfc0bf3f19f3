#include <tunnel/session.hpp>

namespace tunnel {

Session::Session(boost::asio::io_context& io, TunPort& tun, const LinkConfig& cfg, std::uint64_t id,
                 SessionEvents& events)
    : io_(io), tun_(tun), cfg_(cfg), id_(id), events_(events) {
  link(0);
}

Session::~Session() {
  for (auto& l : links_)
    if (l) l->orphan();
}

Link& Session::link(unsigned i) {
  if (i >= hs::kMaxLinks) i = hs::kMaxLinks - 1;
  if (links_.size() <= i) links_.resize(i + 1);
  if (!links_[i]) links_[i] = std::make_shared<Link>(io_, tun_, *this, i, i ? realtime_link_config(cfg_) : cfg_);
  return *links_[i];
}

bool Session::enqueue_realtime(std::span<const std::uint8_t> pkt, Clock::time_point now) {
  bool any = false;
  const std::uint64_t rseq = ++rseq_;
  for (std::size_t i = 1; i < links_.size(); ++i)
    if (links_[i] && links_[i]->connected()) any = links_[i]->core().enqueue_rt(pkt, rseq, now) || any;
  if (!any) return enqueue(pkt, now, true);
  const bool first = !flush_pending_;
  flush_pending_ = true;
  return first;
}

void Session::flush() {
  flush_pending_ = false;
  for (auto& l : links_)
    if (l) l->flush();
}

bool Session::tick(Clock::time_point now) {
  bool alive = false;
  for (auto& l : links_) {
    if (!l) continue;
    l->tick(now);
    alive = alive || !l->core().expired(now);
  }
  return alive;
}

void Session::close() {
  for (auto& l : links_)
    if (l) l->close();
}

void Session::reset(std::uint64_t new_id) {
  const auto now = Clock::now();
  for (auto& l : links_)
    if (l) {
      l->detach();
      l->core().reset(now);
    }
  first_.reset();
  rseq_ = 0;
  id_ = new_id;
}

void Session::check_sources(std::span<const Prefix> prefixes) {
  check_sources_ = true;
  sources_.clear();
  for (const auto& p : prefixes) sources_.push_back(RawPrefix::from(p));
}

LinkCounters Session::counters() const {
  LinkCounters c;
  for (auto& l : links_)
    if (l) c += l->core().counters();
  return c;
}

ReplayCounters Session::replay_counters() const {
  ReplayCounters r;
  for (auto& l : links_) {
    if (!l) continue;
    const auto& x = l->core().buffer().counters();
    r.drop_full += x.drop_full;
    r.drop_age += x.drop_age;
    r.drop_unsent += x.drop_unsent;
    r.drop_cleared += x.drop_cleared;
    r.drop_memory += x.drop_memory;
    r.acked += x.acked;
  }
  return r;
}

std::size_t Session::memory_bytes() const {
  std::size_t n = sizeof(Session);
  for (auto& l : links_)
    if (l) n += sizeof(Link) - sizeof(LinkCore) + l->core().memory_bytes();
  return n;
}

std::size_t Session::buffered_packets() const {
  std::size_t n = 0;
  for (auto& l : links_)
    if (l) n += l->core().buffer().packets();
  return n;
}

}  // namespace tunnel
