// open_userspace_iommufd (ioas/kernel_engine.hpp): the kernel engine's ioctls
// served by ioas's own userspace iommufd, where there is no /dev/iommu.
#include <unistd.h>

#include <cerrno>

#include "ioas/iommufd.h"
#include "ioas/kernel_engine.hpp"

namespace ioas {
namespace {

class UserspacePort final : public IommufdPort {
 public:
  UserspacePort(int handle, std::string engine) : handle_(handle), engine_(std::move(engine)) {}
  ~UserspacePort() override { ioas_iommufd_close(handle_); }
  int ioctl(unsigned long request, void* arg) override {
    return ioas_iommufd_ioctl(handle_, request, arg) == 0 ? 0 : -errno;
  }
  // An access descriptor leaves its context first, as the kernel's release does.
  void close_fd(int fd) override {
    (void)ioas_iommufd_release_fd(fd);
    ::close(fd);
  }
  std::string describe() const override { return "userspace iommufd (" + engine_ + ")"; }

 private:
  int handle_;
  std::string engine_;
};

}  // namespace

Result<std::unique_ptr<IommufdPort>> open_userspace_iommufd(const std::string& engine) {
  const int h = ioas_iommufd_open_engine(engine.c_str());
  if (h < 0) return make_error(errno, "userspace iommufd on engine " + engine + ": " + ioas_iommufd_last_error());
  return std::unique_ptr<IommufdPort>(std::make_unique<UserspacePort>(h, engine));
}

}  // namespace ioas
