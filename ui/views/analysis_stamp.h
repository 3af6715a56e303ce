// QKLab ui — the step and seed an on-request analysis was computed at, and whether training has
// moved on since (the views title their plots with it and mark it stale).
#pragma once
#include <QObject>
#include <QString>

namespace qkui {

struct AnalysisStamp {
  qint64 step = -1, current = 0;
  int seed = 0;
  bool have = false;
  void computed(qint64 s, int sd) {
    have = true;
    step = s;
    seed = sd;
    if (s > current) current = s;
  }
  bool stale() const { return have && step >= 0 && current > step; }
  QString text(const QString& what) const {
    if (!have) return QObject::tr("%1: not computed yet (shown when this tab opens or the run pauses)").arg(what);
    QString s = QObject::tr("%1 at step %2, seed %3").arg(what).arg(std::max<qint64>(step, 0)).arg(seed);
    if (stale()) s += QObject::tr(" — stale: training is at step %1; press Compute").arg(current);
    return s;
  }
  QString suffix() const {
    return have ? QObject::tr(" (step %1, seed %2)").arg(std::max<qint64>(step, 0)).arg(seed) : QString();
  }
};

}  // namespace qkui
