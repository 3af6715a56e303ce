// QKLab ui — attention heatmaps (see attention_view.h).
#include "attention_view.h"

#include <QCheckBox>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QToolTip>
#include <qcustomplot.h>

namespace qkui {

AttentionView::AttentionView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("attentionPrompt");
  prompt_->setPlaceholderText(tr("prompt text, or for a task the number of a validation sequence"));
  layer_ = new QSpinBox(this);
  layer_->setObjectName("attentionLayer");
  head_ = new QSpinBox(this);
  head_->setObjectName("attentionHead");
  all_heads_ = new QCheckBox(tr("All heads"), this);
  all_heads_->setObjectName("attentionAllHeads");
  auto* go = new QPushButton(tr("Refresh"), this);
  bar->addWidget(new QLabel(tr("<b>Attention</b>  Prompt"), this));
  bar->addWidget(prompt_, 1);
  bar->addWidget(new QLabel(tr("Layer"), this));
  bar->addWidget(layer_);
  bar->addWidget(new QLabel(tr("Head"), this));
  bar->addWidget(head_);
  bar->addWidget(all_heads_);
  bar->addWidget(go);
  layout->addLayout(bar);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  canvas_ = new QWidget(scroll);
  grid_ = new QGridLayout(canvas_);
  scroll->setWidget(canvas_);
  layout->addWidget(scroll, 1);
  connect(go, &QPushButton::clicked, this, &AttentionView::refresh);
  connect(prompt_, &QLineEdit::returnPressed, this, &AttentionView::refresh);
  connect(layer_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { rebuild(); });
  connect(head_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { rebuild(); });
  connect(all_heads_, &QCheckBox::toggled, this, [this](bool on) {
    head_->setEnabled(!on);
    rebuild();
  });
}

void AttentionView::setModelShape(int layers, int heads, bool text) {
  layer_->setRange(0, std::max(0, layers - 1));
  head_->setRange(0, std::max(0, heads - 1));
  prompt_->clear();
  prompt_->setPlaceholderText(text ? tr("prompt text") : tr("validation sequence number (0, 1, 2, …)"));
  views_.clear();
  rebuild();
}

void AttentionView::setLayerHead(int layer, int head) {
  layer_->setValue(layer);
  head_->setValue(head);
}

QString AttentionView::prompt() const { return prompt_->text(); }

void AttentionView::refresh() { Q_EMIT attentionRequested(prompt_->text()); }

void AttentionView::setAttention(const std::vector<qk::AttentionView>& views) {
  views_ = views;
  rebuild();
}

const std::vector<float>* AttentionView::weightsOf(const qk::AttentionView& v, int head) const {
  const size_t idx = size_t(layer_->value()) * v.heads + head;
  return idx < v.weights.size() ? &v.weights[idx] : nullptr;
}

std::vector<float> AttentionView::shownWeights(const QString& variant) const {
  for (const auto& v : views_)
    if (QString::fromStdString(v.variant) == variant)
      if (auto* w = weightsOf(v, head_->value())) return *w;
  return {};
}

void AttentionView::rebuild() {
  for (auto& p : panels_) p.plot->deleteLater();
  panels_.clear();
  if (views_.empty()) return;
  const int T = views_[0].T;
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int i = 0; i < T; ++i) {
    QString t = QString::fromStdString(views_[0].tokens[i]).replace('\n', "\\n");
    ticker->addTick(i, t.size() > 10 ? t.left(9) + "…" : t);
  }
  auto add_panel = [&](const QString& variant, int head, const std::vector<float>* w, const std::vector<float>* w2,
                       int row, int col, const QString& title) {
    auto* plot = new QCustomPlot(canvas_);
    style_plot(plot);
    plot->setMinimumSize(all_heads_->isChecked() ? 220 : 320, all_heads_->isChecked() ? 200 : 300);
    auto* map = make_heatmap(plot, w2 != nullptr, w2 ? -1 : 0, 1);
    map->data()->setSize(T, T);
    map->data()->setRange(QCPRange(0, T - 1), QCPRange(0, T - 1));
    for (int q = 0; q < T; ++q)
      for (int k = 0; k < T; ++k) {
        double v = (*w)[q * T + k];
        if (w2) v -= (*w2)[q * T + k];
        map->data()->setCell(k, q, v);
      }
    plot->xAxis->setTicker(ticker);
    plot->yAxis->setTicker(ticker);
    plot->xAxis->setTickLabelRotation(60);
    plot->xAxis->setLabel(tr("key"));
    plot->yAxis->setLabel(tr("query"));
    plot->rescaleAxes();
    plot->xAxis->setRange(-0.5, T - 0.5);
    plot->yAxis->setRange(-0.5, T - 0.5);
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, title, QFont(font().family(), 9, QFont::Bold)));
    plot->setMouseTracking(true);
    plot->installEventFilter(this);
    plot->replot();
    grid_->addWidget(plot, row, col);
    panels_.push_back({plot, variant, head});
  };
  if (all_heads_->isChecked()) {
    for (size_t r = 0; r < views_.size(); ++r)
      for (int h = 0; h < views_[r].heads; ++h)
        if (auto* w = weightsOf(views_[r], h)) {
          const QString v = QString::fromStdString(views_[r].variant);
          add_panel(v, h, w, nullptr, int(r), h, QString("%1 L%2 H%3").arg(v).arg(layer_->value()).arg(h));
        }
  } else {
    const int h = head_->value();
    int col = 0;
    for (auto& view : views_)
      if (auto* w = weightsOf(view, h)) {
        const QString v = QString::fromStdString(view.variant);
        add_panel(v, h, w, nullptr, 0, col++,
                  QString("%1 L%2 H%3 · entropy %4 · rank %5").arg(v).arg(layer_->value()).arg(h)
                      .arg(view.entropy[layer_->value()][h], 0, 'f', 2).arg(view.rank[layer_->value()][h]));
      }
    if (views_.size() >= 2) {
      auto* a = weightsOf(views_[0], h);
      auto* b = weightsOf(views_[1], h);
      if (a && b)
        add_panel("", h, a, b, 0, col,
                  QString("%1 − %2").arg(QString::fromStdString(views_[0].variant), QString::fromStdString(views_[1].variant)));
    }
  }
}

bool AttentionView::eventFilter(QObject* obj, QEvent* ev) {
  if (ev->type() == QEvent::MouseMove && !views_.empty()) {
    for (const auto& p : panels_) {
      if (p.plot != obj) continue;
      auto* me = static_cast<QMouseEvent*>(ev);
      const int k = int(std::lround(p.plot->xAxis->pixelToCoord(me->position().x())));
      const int q = int(std::lround(p.plot->yAxis->pixelToCoord(me->position().y())));
      const int T = views_[0].T;
      if (q < 0 || k < 0 || q >= T || k >= T) return false;
      double w = 0;
      for (const auto& v : views_) {
        auto* ws = weightsOf(v, p.head);
        if (!ws) continue;
        if (QString::fromStdString(v.variant) == p.variant) w = (*ws)[q * T + k];
      }
      QString text = QString("query %1 '%2'\nkey %3 '%4'").arg(q).arg(QString::fromStdString(views_[0].tokens[q]))
                         .arg(k).arg(QString::fromStdString(views_[0].tokens[k]));
      if (!p.variant.isEmpty()) text += QString("\nweight %1").arg(w, 0, 'f', 4);
      QToolTip::showText(me->globalPosition().toPoint(), text, p.plot);
    }
  }
  return QWidget::eventFilter(obj, ev);
}

QList<Exportable> AttentionView::exportables() const {
  QList<Exportable> out;
  for (const auto& p : panels_) {
    if (p.variant.isEmpty()) continue;
    const QString name = QString("attention_%1_L%2H%3").arg(p.variant).arg(layer_->value()).arg(p.head);
    const QString variant = p.variant;
    const int head = p.head;
    out.push_back({name, QString("Attention %1 layer %2 head %3").arg(p.variant).arg(layer_->value()).arg(p.head), p.plot,
                   [this, variant, head] {
                     QString csv = "query,key,query_token,key_token,weight\n";
                     for (const auto& v : views_) {
                       if (QString::fromStdString(v.variant) != variant) continue;
                       auto* w = weightsOf(v, head);
                       if (!w) continue;
                       for (int q = 0; q < v.T; ++q)
                         for (int k = 0; k <= q; ++k) {
                           auto esc = [](std::string s) {
                             QString t = QString::fromStdString(s);
                             t.replace('"', "\"\"");
                             return "\"" + t + "\"";
                           };
                           csv += QString("%1,%2,%3,%4,%5\n").arg(q).arg(k).arg(esc(v.tokens[q]), esc(v.tokens[k]))
                                      .arg((*w)[q * v.T + k], 0, 'g', 7);
                         }
                     }
                     return csv;
                   }});
  }
  return out;
}

}  // namespace qkui
