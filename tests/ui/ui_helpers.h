// QKLab UI tests — shared helpers: waiting on the event loop, a run folder as qklab-cli writes it,
// the first bytes of a file.
#pragma once
#include <QElapsedTimer>
#include <QFile>
#include <QString>
#include <QTest>
#include <catch2/catch.hpp>
#include <functional>

#include "main_window.h"
#include "presets.h"
#include "run_dir.h"
#include "trainer.h"

namespace qkt_ui {

using qkui::MainWindow;

inline bool wait_until(const std::function<bool()>& pred, int ms) {
  QElapsedTimer t;
  t.start();
  while (!pred()) {
    if (t.elapsed() > ms) return false;
    QTest::qWait(10);
  }
  return true;
}

inline QByteArray head_of(const QString& path, int n) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.read(n);
}

// A run folder as `qklab-cli train` writes it: the default preset for `steps` steps and `seeds` seeds.
inline void write_run(const QString& dir, int steps, int seeds) {
  auto c = qk::preset_config("default");
  c.train.steps = steps;
  c.train.eval_every = 10;
  c.train.seeds = seeds;
  qk::Experiment e(c);
  qk::RunWriter writer(dir.toStdString(), false);
  writer.write_config(e.config());
  e.run(&writer, nullptr);
  e.save_checkpoints(dir.toStdString());
}

inline void ready(MainWindow& w) { REQUIRE(wait_until([&] { return w.info().total_steps > 0; }, 20000)); }


}  // namespace qkt_ui
