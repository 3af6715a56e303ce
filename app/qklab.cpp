// qklab — the QKLab desktop lab. Thin main: builds the MainWindow (ui/) and runs the event loop.
// --autostart trains the default experiment at once; --screenshot FILE --steps N trains N steps,
// saves a picture of the window and quits (used by CI under Xvfb).
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
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
  cli.addOptions({autostart, shot, steps});
  cli.addPositionalArgument("corpus", "optional UTF-8 text file to train on");
  cli.process(app);

  qkui::MainWindow w;
  if (!cli.positionalArguments().isEmpty()) w.openCorpus(cli.positionalArguments().first());
  w.show();
  if (cli.isSet(autostart) || cli.isSet(shot)) QTimer::singleShot(100, &w, &qkui::MainWindow::start);
  if (cli.isSet(shot)) {
    const QString file = cli.value(shot);
    const qint64 n = cli.value(steps).toLongLong();
    auto* poll = new QTimer(&w);
    QObject::connect(poll, &QTimer::timeout, &w, [&w, file, n, poll] {
      if (w.stepsDone() < n && w.lastError().isEmpty()) return;
      poll->stop();
      w.pause();
      QTimer::singleShot(300, &w, [&w, file] {
        w.grab().save(file);
        QApplication::quit();
      });
    });
    poll->start(50);
  }
  return app.exec();
}
