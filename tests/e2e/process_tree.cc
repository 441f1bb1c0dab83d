#include "tests/e2e/process_tree.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace ftd::testing {

namespace fs = std::filesystem;

std::vector<pid_t> child_pids(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(parent) + "/task", ec)) {
    std::ifstream in(task.path() / "children");
    pid_t p;
    while (in >> p) out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

std::vector<pid_t> qemu_children(pid_t parent) {
  std::vector<pid_t> out;
  for (pid_t c : child_pids(parent))
    if (comm_of(c).starts_with("qemu-system")) out.push_back(c);
  return out;
}

bool kill_if_qemu(pid_t pid) {
  if (!comm_of(pid).starts_with("qemu-system")) return false;
  return ::kill(pid, SIGKILL) == 0;
}

QemuReaper::~QemuReaper() {
  for (pid_t p : pids_) kill_if_qemu(p);
}

void QemuReaper::adopt_children_of(pid_t daemon) {
  for (pid_t p : qemu_children(daemon))
    if (std::find(pids_.begin(), pids_.end(), p) == pids_.end()) pids_.push_back(p);
}

}  // namespace ftd::testing
