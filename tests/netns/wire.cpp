// scorediff_wire: an Ethernet hub in user space between veth ports, adding the faults `tc qdisc netem`
// would add (delay, random loss, a rate limit), for the data-parallel fault tests (tests/scripts/netns.sh).
// This machine's kernel is built without sch_netem (CONFIG_NET_SCH_NETEM is not set; `tc qdisc add ... netem`
// answers "Specified qdisc kind is unknown"), so the faults are applied here, on a real network path: the
// workers' TCP connections run between their own namespaces' veth addresses, and every frame crosses this
// program in the wire namespace in the middle.
//
//   scorediff_wire [--delay-ms D] [--loss P] [--rate-mbit R] [--seed S] IFACE IFACE...
//
// A frame that arrives on one port leaves on every other port, D ms later, unless it is lost (probability P,
// drawn per frame and port from a generator seeded by S), after the frames before it on that port have been
// sent at R Mbit/s. As in netem, a port queues at most 1000 frames; more are dropped. Taking a port's link
// down (`ip link set ... down`) cuts that host off; frames to it are dropped until it is up again. SIGTERM
// or SIGINT prints per-port counts on stderr and exits 0.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;
void stop(int) { g_stop = 1; }

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Frame {
  std::vector<unsigned char> bytes;
  double release = 0;
};

struct Port {
  std::string name;
  int fd = -1;
  std::deque<Frame> queue;
  double line_free = 0;  // when the rate limit lets the next frame start
  long received = 0, sent = 0, lost = 0, overflow = 0, send_errors = 0;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "scorediff_wire: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(2);
}

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr, "scorediff_wire: %s\nusage: scorediff_wire [--delay-ms D] [--loss P] [--rate-mbit R] [--seed S] "
               "IFACE IFACE...\n", problem);
  std::exit(2);
}

double number(const char* option, const char* text, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(v >= lo && v <= hi)) {
    std::fprintf(stderr, "scorediff_wire: %s '%s' must be a number in [%g, %g]\n", option, text, lo, hi);
    std::exit(2);
  }
  return v;
}

int open_port(const std::string& name) {
  const unsigned index = if_nametoindex(name.c_str());
  if (index == 0) die("no interface '" + name + "'");
  const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) die("packet socket (needs CAP_NET_RAW)");
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(index);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("bind to " + name);
  packet_mreq promisc{};
  promisc.mr_ifindex = static_cast<int>(index);
  promisc.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof(promisc)) != 0) die("promiscuous " + name);
  const int one = 1, buffer = 8 << 20;
  ::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));  // our own sends (Linux ≥ 4.20)
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof(buffer));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  double delay = 0, loss = 0, rate_bits = 0;
  unsigned long long seed = 1;
  std::vector<Port> ports;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool valued = a == "--delay-ms" || a == "--loss" || a == "--rate-mbit" || a == "--seed";
    if (valued && i + 1 >= argc) usage(("missing value for " + a).c_str());
    if (a == "--delay-ms") delay = number("--delay-ms", argv[++i], 0, 60000) / 1000;
    else if (a == "--loss") loss = number("--loss", argv[++i], 0, 1);
    else if (a == "--rate-mbit") rate_bits = number("--rate-mbit", argv[++i], 0, 1e6) * 1e6;
    else if (a == "--seed") seed = static_cast<unsigned long long>(number("--seed", argv[++i], 0, 1e15));
    else if (a.rfind("--", 0) == 0) usage(("unknown option " + a).c_str());
    else ports.emplace_back().name = a;
  }
  if (ports.size() < 2) usage("needs at least two interfaces");
  for (Port& p : ports) p.fd = open_port(p.name);
  std::signal(SIGTERM, stop);
  std::signal(SIGINT, stop);
  std::mt19937_64 draw(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  constexpr size_t kQueueLimit = 1000;  // netem's default `limit`
  std::vector<unsigned char> buffer(1 << 17);
  std::vector<pollfd> fds(ports.size());
  while (g_stop == 0) {
    double next = -1;
    for (const Port& p : ports)
      if (!p.queue.empty() && (next < 0 || p.queue.front().release < next)) next = p.queue.front().release;
    int wait_ms = 100;  // at most: a SIGTERM between the loop's check and poll() is seen within 0.1 s
    if (next >= 0) wait_ms = std::clamp(static_cast<int>((next - now_s()) * 1000 + 0.999), 0, 100);
    for (size_t i = 0; i < ports.size(); ++i) fds[i] = {ports[i].fd, POLLIN, 0};
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) die("poll");
    const double t = now_s();
    for (size_t i = 0; i < ports.size(); ++i) {
      // POLLERR too: a port whose link is down reports ENETDOWN until recvfrom() collects it (else poll spins).
      if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
      for (;;) {
        sockaddr_ll from{};
        socklen_t from_len = sizeof(from);
        const ssize_t n = ::recvfrom(ports[i].fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from),
                                     &from_len);
        if (n < 0) break;  // EAGAIN: drained (ENETDOWN while the link is cut)
        if (from.sll_pkttype == PACKET_OUTGOING) continue;
        ++ports[i].received;
        for (size_t j = 0; j < ports.size(); ++j) {
          if (j == i) continue;
          Port& out = ports[j];
          if (loss > 0 && uniform(draw) < loss) {
            ++out.lost;
            continue;
          }
          if (out.queue.size() >= kQueueLimit) {
            ++out.overflow;
            continue;
          }
          double leaves = t;
          if (rate_bits > 0) {
            out.line_free = std::max(out.line_free, t) + static_cast<double>(n) * 8 / rate_bits;
            leaves = out.line_free;
          }
          out.queue.push_back({std::vector<unsigned char>(buffer.begin(), buffer.begin() + n), leaves + delay});
        }
      }
    }
    const double sent_at = now_s();
    for (Port& p : ports)
      while (!p.queue.empty() && p.queue.front().release <= sent_at) {
        const Frame& f = p.queue.front();
        if (::send(p.fd, f.bytes.data(), f.bytes.size(), 0) == static_cast<ssize_t>(f.bytes.size()))
          ++p.sent;
        else
          ++p.send_errors;  // the link is down (ENETDOWN) or the frame does not fit (EMSGSIZE)
        p.queue.pop_front();
      }
  }
  for (const Port& p : ports) {
    tpacket_stats stats{};
    socklen_t len = sizeof(stats);
    ::getsockopt(p.fd, SOL_PACKET, PACKET_STATISTICS, &stats, &len);
    std::fprintf(stderr,
                 "scorediff_wire: %s: received %ld, sent %ld, lost %ld (random), %ld (queue full), send errors %ld, "
                 "socket drops %u\n", p.name.c_str(), p.received, p.sent, p.lost, p.overflow, p.send_errors,
                 stats.tp_drops);
  }
  return 0;
}
