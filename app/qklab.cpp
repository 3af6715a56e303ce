// qklab — the QKLab desktop lab. Thin main: builds the MainWindow (ui/) and runs the event loop.
// --autostart trains the default experiment at once; --screenshot FILE --steps N trains N steps,
// saves a picture of the window (and with --report DIR exports the report) and quits (CI, Xvfb).
#include "blas_kernels.h"
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QFileInfo>
#include <QElapsedTimer>
#include <QTimer>

#include <QTabWidget>
#include <nlohmann/json.hpp>

#include "config.h"
#include "main_window.h"
#include "openmp_policy.h"
#include "presets.h"

// Saves the window's picture; then quits, or exports the report first when one was asked for.
void shoot(qkui::MainWindow& w, const QString& file, const QString& report_dir) {
        w.grab().save(file);
        if (report_dir.isEmpty()) return QApplication::quit();
        QObject::connect(&w, &qkui::MainWindow::reportWritten, &w, [](const QString&, const QString& error) {
          if (!error.isEmpty()) qCritical("qklab: %s", qPrintable(error));
          QApplication::exit(error.isEmpty() ? 0 : 1);
        });
        w.exportReport(report_dir);
}

int main(int argc, char** argv) {
  qk::choose_blas_kernels();  // before any BLAS call, and set for the re-execution below (blas_kernels.h)
  qkui::ensure_passive_openmp(argv);  // the training worker's threads must not spin against the GUI thread
  QApplication::setHighDpiScaleFactorRoundingPolicy(Qt::HighDpiScaleFactorRoundingPolicy::PassThrough);
  QApplication app(argc, argv);
  Q_INIT_RESOURCE(qklab);
  QApplication::setApplicationName("QKLab");
  QApplication::setOrganizationName("QKLab");
  QApplication::setApplicationVersion("0.1.0");
  QApplication::setWindowIcon(QIcon(":/qklab/qklab.svg"));
  QCommandLineParser cli;
  cli.setApplicationDescription("QKLab — does a transformer need separate query and key matrices?");
  cli.addHelpOption();
  cli.addVersionOption();
  QCommandLineOption autostart("autostart", "start training the default experiment at once");
  QCommandLineOption shot("screenshot", "train, save a PNG of the window to FILE and quit", "FILE");
  QCommandLineOption steps("steps", "with --screenshot: steps to train first (default 200)", "N", "200");
  QCommandLineOption tab("tab", "view to show: loss, attention, spectra, rank, geometry, circuits, ablation, samples, sweep", "NAME", "loss");
  QCommandLineOption report("report", "with --screenshot: also export the report into DIR", "DIR");
  QCommandLineOption run("run", "open a run folder written by qklab-cli", "DIR");
  QCommandLineOption preset("preset", "start from a built-in preset", "NAME");
  cli.addOptions({autostart, shot, steps, tab, run, preset, report});
  cli.addPositionalArgument("file", "optional: a UTF-8 text file to train on, an experiment .json, a run folder or a "
                                    "model checkpoint (.safetensors) to open");
  cli.process(app);

  qkui::MainWindow w;
  if (cli.isSet(preset)) {
    try {
      w.loadExperiment(qk::preset_config(cli.value(preset).toStdString()));
    } catch (const std::exception& e) {
      qCritical("qklab: %s", e.what());
      return 2;
    }
  }
  if (!cli.positionalArguments().isEmpty()) {
    const QString f = cli.positionalArguments().first();
    if (QFileInfo(f).isDir() || f.endsWith(".safetensors", Qt::CaseInsensitive)) w.openRunFolder(f);
    else if (f.endsWith(".json", Qt::CaseInsensitive)) w.openExperimentFile(f);
    else w.openCorpus(f);
  }
  if (cli.isSet(run)) w.openRunFolder(cli.value(run));
  if ((cli.isSet(tab) || !w.sweepOpen()) && !w.showView(cli.value(tab))) {
    qCritical("qklab: --tab: no view '%s' (expected one of: %s)", qPrintable(cli.value(tab)),
              qPrintable(w.viewNames().join(", ")));
    return 2;
  }
  w.show();
  if (cli.isSet(autostart) || (cli.isSet(shot) && !cli.isSet(run) && !w.sweepOpen()))
    QTimer::singleShot(100, &w, &qkui::MainWindow::start);
  if (cli.isSet(shot)) {  // train (or open the run), wait for the views, save a picture, quit
    const QString file = cli.value(shot);
    const qint64 n = cli.value(steps).toLongLong();
    auto* poll = new QTimer(&w);
    const bool replay = cli.isSet(run);
    const QString report_dir = cli.value(report);
    QObject::connect(poll, &QTimer::timeout, &w, [&w, file, n, poll, replay, report_dir] {
      if (w.lastError().isEmpty() && !w.sweepOpen() &&
          (replay ? w.info().run_dir.isEmpty() : w.stepsDone() < n && !w.isFinished()))
        return;
      poll->stop();
      w.pause();
      QTimer::singleShot(1500, &w, [&w, file, report_dir] {
        // An analysis still running (ablation of a large model) finishes before the picture: poll
        // with a sleeping timer (a busy loop here would starve the worker's BLAS threads).
        auto* settle = new QTimer(&w);
        auto* waited = new QElapsedTimer;
        waited->start();
        QObject::connect(settle, &QTimer::timeout, &w, [&w, file, report_dir, settle, waited] {
          if (w.analysisBusy() && waited->elapsed() < 300000) return;
          settle->stop();
          delete waited;
          QTimer::singleShot(300, &w, [&w, file, report_dir] { shoot(w, file, report_dir); });
        });
        settle->start(100);
      });
    });
    poll->start(50);
  }
  return app.exec();
}
