#include "status.hpp"

#include "options.hpp"

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>

namespace tunneld {
namespace asio = boost::asio;
using local = asio::local::stream_protocol;

std::string default_status_socket(const std::string& tun) { return "/run/tunneld/" + tun + ".sock"; }

StatusServer::StatusServer(asio::io_context& io, std::string path, Render render)
    : acceptor_(io), path_(std::move(path)), render_(std::move(render)) {
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
    if (!ec) {
      auto sock = std::make_shared<local::socket>(std::move(s));
      auto buf = std::make_shared<asio::streambuf>(64);
      asio::async_read_until(*sock, *buf, '\n', [this, sock, buf](const boost::system::error_code& rec, std::size_t) {
        if (rec) return;
        std::string line{std::istreambuf_iterator<char>(&*buf), {}};
        auto reply = std::make_shared<std::string>(render_(line.rfind("json", 0) == 0));
        asio::async_write(*sock, asio::buffer(*reply), [sock, reply](const boost::system::error_code&, std::size_t) {});
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
