// QKLab ui — the headless report command (see report_command.h).
#include "report_command.h"

#include <unistd.h>

#include <QApplication>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <memory>
#include <ostream>

#include "error.h"
#include "format.h"
#include "inspect.h"
#include "report.h"
#include "run_dir.h"
#include "study.h"
#include "sweep.h"
#include "sweep_report.h"

namespace qkui {
namespace {

// Qt's notes about the headless platform itself (no XDG runtime folder, no window hints) are not
// the user's concern; everything else Qt says goes to stderr as usual.
void quiet_platform_notes(QtMsgType type, const QMessageLogContext& ctx, const QString& msg) {
  if (type == QtWarningMsg && (msg.contains("XDG_RUNTIME_DIR") || msg.contains("propagateSizeHints"))) return;
  // Qt's PNG writer prints libpng's own line when a write fails ("libpng error: Write Error"); the
  // report's one line names the file and the space left, so it is not repeated.
  if (msg.startsWith("libpng ")) return;
  std::fprintf(stderr, "%s\n", qPrintable(qFormatLogMessage(type, ctx, msg)));
}

// A QApplication on the offscreen platform when none exists (plots are widgets).
void ensure_application() {
  if (QCoreApplication::instance()) return;
  qInstallMessageHandler(quiet_platform_notes);
  qputenv("QT_QPA_PLATFORM", "offscreen");
  static int argc = 1;
  static char name[] = "qklab-cli";
  static char* argv[] = {name, nullptr};
  static std::unique_ptr<QApplication> app(new QApplication(argc, argv));
  QApplication::setApplicationName("QKLab");
  QApplication::setApplicationVersion("0.1.0");
}

ExportOptions export_options(const ReportCommandOptions& o) {
  ExportOptions opt;
  opt.size = QSize(o.width, o.height);
  opt.png_scale = o.scale;
  return opt;
}

}  // namespace

int cmd_report(const ReportCommandOptions& o, std::ostream& out, std::ostream& err) {
  if (o.width < 100 || o.height < 100 || o.width > 20000 || o.height > 20000)
    throw qk::Error("--size: expected WIDTHxHEIGHT between 100 and 20000 pixels");
  if (!(o.scale >= 0.5 && o.scale <= 8)) throw qk::Error("--scale: expected a number in [0.5, 8]");
  if (qk::is_sweep_dir(o.run_dir)) {  // a sweep folder: its plots and aggregate table
    ensure_application();
    const std::string dir = o.out_dir.empty() ? o.run_dir + "/report" : o.out_dir;
    const auto r = write_sweep_report(QString::fromStdString(o.run_dir), QString::fromStdString(dir), export_options(o));
    if (!r.error.isEmpty()) throw qk::Error(r.error.toStdString());
    out << "wrote " << dir << "/index.html: the sweep's figures and aggregate table (" << r.finished << " of " << r.runs
        << " runs finished), " << r.files.size() << " files\n";
    return 0;
  }
  if (qk::is_study_dir(o.run_dir)) {  // a study: a sweep report per stage and an index
    ensure_application();
    const std::string dir = o.out_dir.empty() ? o.run_dir + "/report" : o.out_dir;
    const auto r = write_study_report(QString::fromStdString(o.run_dir), QString::fromStdString(dir), export_options(o));
    if (!r.error.isEmpty()) throw qk::Error(r.error.toStdString());
    out << "wrote " << dir << "/index.html: the study's stages (" << r.finished << " of " << r.runs
        << " runs finished), " << r.files.size() << " files\n";
    return 0;
  }
  const qk::RunContents rc = qk::read_run(o.run_dir);
  qk::Inspector inspector;
  if (!rc.checkpoints.empty()) inspector.attach_run(o.run_dir, rc, o.seed);
  else err << "qklab-cli: " << o.run_dir << ": no checkpoints; the report shows the curves only\n";
  const bool tty = isatty(fileno(stderr));
  const auto t0 = std::chrono::steady_clock::now();
  auto data = qk::collect_report(inspector, rc, o.prompt, [&](int done, int total, const std::string& what) {
    if (!tty) return;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = done > 0 ? el / done * (total - done) : -1;
    err << "\rreport: " << done << "/" << total << " " << what << " · " << std::fixed << std::setprecision(1)
        << (el > 0 ? done / el : 0.0) << "/s · ETA " << qk::format_duration(eta) << "\033[K" << std::flush;
  });
  data.source = "run folder " + o.run_dir;
  ensure_application();
  const std::string dir = o.out_dir.empty() ? o.run_dir + "/report" : o.out_dir;
  const auto r = write_report(data, QString::fromStdString(dir), export_options(o), [&](int done, int total) {
    if (tty) err << "\rreport: drawing figure " << done << "/" << total << "\033[K" << std::flush;
  });
  if (tty) err << "\r\033[K";
  if (!r.error.isEmpty()) throw qk::Error(r.error.toStdString());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << "wrote " << dir << "/index.html: " << r.pngs.size() << " figures (PNG, SVG, PDF + CSV), "
      << r.files.size() << " files, analyses at step " << data.step << " seed " << data.seed << ", in "
      << std::fixed << std::setprecision(1) << secs << " s\n";
  return 0;
}

}  // namespace qkui
