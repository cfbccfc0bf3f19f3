#include "status.hpp"

#include "admin.hpp"
#include "options.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>

namespace tunneld {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

std::string default_status_socket(const std::string& tun) { return "/run/tunneld/" + tun + ".sock"; }

StatusServer::StatusServer(asio::io_context& io, std::string path, Render render, Admin admin)
    : acceptor_(io), retry_(io), path_(std::move(path)), render_(std::move(render)), admin_(std::move(admin)) {
  std::error_code fec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), fec);
  ::unlink(path_.c_str());  // a socket file left by a crashed instance
  const mode_t old = ::umask(0077);  // status shows addresses: owner only
  acceptor_.open(local());
  acceptor_.bind(local::endpoint(path_));
  ::umask(old);
  acceptor_.listen(8);
  accept();
}

StatusServer::~StatusServer() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  ::unlink(path_.c_str());
}

void StatusServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, local::socket s) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      retry_.expires_after(std::chrono::milliseconds(200));
      retry_.async_wait([this](const boost::system::error_code& tec) {
        if (!tec) accept();
      });
      return;
    }
    {
      auto sock = std::make_shared<local::socket>(std::move(s));
      // A request line of at most 4 KiB, then a send's body.
      auto buf = std::make_shared<asio::streambuf>(4096 + 65536 + 64);
      asio::async_read_until(*sock, *buf, '\n', [this, sock, buf](const boost::system::error_code& rec, std::size_t n) {
        if (rec || n > 4096) return;
        std::string line(asio::buffers_begin(buf->data()), asio::buffers_begin(buf->data()) + static_cast<long>(n));
        buf->consume(n);
        auto reply = [sock](std::string text) {
          auto r = std::make_shared<std::string>(std::move(text));
          asio::async_write(*sock, asio::buffer(*r), [sock, r](const boost::system::error_code&, std::size_t) {});
        };
        std::size_t body_bytes = 0;
        if (!admin_ || !is_admin_request(line, body_bytes)) {
          reply(render_(line.rfind("json", 0) == 0));
          return;
        }
        if (body_bytes == std::numeric_limits<std::size_t>::max()) return reply("2 malformed request\n");
        const std::size_t have = std::min(buf->size(), body_bytes);
        asio::async_read(*sock, *buf, asio::transfer_exactly(body_bytes - have),
                         [this, sock, buf, line, body_bytes, reply](const boost::system::error_code& bec, std::size_t) {
                           if (bec && buf->size() < body_bytes) return;
                           const auto* p = static_cast<const std::uint8_t*>(buf->data().data());
                           std::vector<std::uint8_t> body(p, p + body_bytes);
                           admin_(line, std::move(body), reply);
                         });
      });
    }
    accept();
  });
}

int run_status(const std::string& path, bool json) {
  asio::io_context io;
  local::socket s(io);
  boost::system::error_code ec;
  s.connect(local::endpoint(path), ec);
  if (ec) {
    std::cerr << "tunneld status: cannot reach " << path << ": " << ec.message()
              << " (is tunneld running? is --socket/--tun right?)\n";
    return 1;
  }
  const std::string req = json ? "json\n" : "text\n";
  asio::write(s, asio::buffer(req), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    const std::size_t n = s.read_some(asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  if (ec != asio::error::eof) {
    std::cerr << "tunneld status: " << ec.message() << "\n";
    return 1;
  }
  std::cout << out;
  if (!out.empty() && out.back() != '\n') std::cout << '\n';
  return 0;
}

}  // namespace tunneld
