// Found before Boost's own <boost/config.hpp> by the files of tunnel_core
// (libtunnel/CMakeLists.txt). Every Boost header, Boost.Asio's included,
// includes <boost/config.hpp> first, so any Boost header reached from the
// per-link protocol core stops the build here: the core stays pure (no
// sockets, no Asio; docs/architecture.md, "Layers").
#error "tunnel_core must not include Boost: the per-link protocol core is pure (no Asio)"
