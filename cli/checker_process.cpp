#include "checker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include "checker.hpp"

namespace ioas::cli {
namespace {

// The child's exit statuses.
constexpr int kChildOk = 0;
constexpr int kChildOutOfMemory = 3;
constexpr int kChildFailed = 4;

// The pipe's format: the clause and solver-call counts (4 bytes each), then
// per violation, the invariant (1 byte), the IOAS and the
// detail (a 4-byte length and the bytes each), whether there is a witness
// (1 byte) and the witness (8 bytes). Native byte order: one machine.
void put_bytes(std::string& out, const void* p, std::size_t n) { out.append(static_cast<const char*>(p), n); }
void put_text(std::string& out, const std::string& s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  put_bytes(out, &n, sizeof n);
  out += s;
}

std::string encode(const checker::Report& rep) {
  std::string out;
  const std::int32_t counts[2] = {rep.clauses, rep.solver_calls};
  put_bytes(out, counts, sizeof counts);
  for (const Violation& v : rep.violations) {
    const auto inv = static_cast<std::uint8_t>(v.invariant);
    put_bytes(out, &inv, 1);
    put_text(out, v.ioas);
    put_text(out, v.detail);
    const std::uint8_t has = v.witness.has_value();
    const u64 w = v.witness.value_or(0);
    put_bytes(out, &has, 1);
    put_bytes(out, &w, sizeof w);
  }
  return out;
}

class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool done() const { return at_ == s_.size(); }
  void get(void* p, std::size_t n) {
    if (s_.size() - at_ < n) throw std::runtime_error("the Z3 checker's answer is cut short");
    std::memcpy(p, s_.data() + at_, n);
    at_ += n;
  }
  std::string text() {
    std::uint32_t n = 0;
    get(&n, sizeof n);
    if (s_.size() - at_ < n) throw std::runtime_error("the Z3 checker's answer is cut short");
    std::string t = s_.substr(at_, n);
    at_ += n;
    return t;
  }

 private:
  const std::string& s_;
  std::size_t at_ = 0;
};

checker::Report decode(const std::string& s) {
  checker::Report rep;
  Reader r(s);
  std::int32_t counts[2] = {0, 0};
  r.get(counts, sizeof counts);
  rep.clauses = counts[0];
  rep.solver_calls = counts[1];
  std::vector<Violation>& vs = rep.violations;
  while (!r.done()) {
    Violation v{};
    std::uint8_t inv = 0, has = 0;
    u64 w = 0;
    r.get(&inv, 1);
    v.invariant = static_cast<Invariant>(inv);
    v.ioas = r.text();
    v.detail = r.text();
    r.get(&has, 1);
    r.get(&w, sizeof w);
    if (has) v.witness = w;
    vs.push_back(std::move(v));
  }
  return rep;
}

bool write_all(int fd, const std::string& s) {
  for (std::size_t at = 0; at < s.size();) {
    const ssize_t n = write(fd, s.data() + at, s.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    at += static_cast<std::size_t>(n);
  }
  return true;
}

// The child: never returns.
// Z3's own exceptions (z3::exception, a std::exception) say "out of memory"
// (or "memory") when it ran out; anything else is passed back as text.
[[noreturn]] void run_child(const state::StateDump& d, int fd) {
  int status = kChildOk;
  try {
    if (!write_all(fd, encode(checker::check_state(d)))) status = kChildFailed;
  } catch (const std::bad_alloc&) {
    status = kChildOutOfMemory;
  } catch (const std::exception& x) {
    const char* what = x.what();
    status = std::strstr(what, "memory") ? kChildOutOfMemory : kChildFailed;
    (void)!write(fd, what, std::strlen(what));
  } catch (...) {
    status = kChildFailed;
  }
  _exit(status);  // no atexit handlers, no flush of the parent's buffers
}

}  // namespace

checker::Report check_state_in_child(const state::StateDump& d) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    if (errno == ENOMEM || errno == ENFILE || errno == EMFILE) throw OutOfMemory("no pipe for the Z3 checker");
    throw std::runtime_error(std::string("no pipe for the Z3 checker: ") + std::strerror(errno));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    if (err == ENOMEM || err == EAGAIN) throw OutOfMemory("no process for the Z3 checker (fork)");
    throw std::runtime_error(std::string("no process for the Z3 checker: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(d, fds[1]);
  }
  close(fds[1]);
  std::string answer;
  char buf[4096];
  bool read_failed = false;
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_failed = true;
    if (n <= 0) break;
    try {
      answer.append(buf, static_cast<std::size_t>(n));
    } catch (const std::bad_alloc&) {
      read_failed = true;
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status))
    throw OutOfMemory(std::string("the Z3 checker died by ") + sigabbrev_np(WTERMSIG(status)) +
                      " (as Z3 does when it runs out of memory)");
  // A failed child's answer is its error's text, if any.
  if (WEXITSTATUS(status) == kChildOutOfMemory)
    throw OutOfMemory("in the Z3 checker" + (answer.empty() ? std::string() : " (" + answer + ")"));
  if (WEXITSTATUS(status) != kChildOk)
    throw std::runtime_error("the Z3 checker failed" + (answer.empty() ? std::string() : ": " + answer));
  if (read_failed) throw OutOfMemory("reading the Z3 checker's answer");
  return decode(answer);
}

std::vector<Violation> check_engine_in_child(const Engine& e) {
  return check_state_in_child(state::dump_engine(e)).violations;
}

}  // namespace ioas::cli
