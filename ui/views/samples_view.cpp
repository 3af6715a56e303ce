// QKLab ui — samples view (see samples_view.h).
#include "samples_view.h"

#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextEdit>

#include "plot_util.h"

namespace qkui {

SamplesView::SamplesView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  prompt_ = new QLineEdit("Every effort moves you", this);
  temperature_ = new QDoubleSpinBox(this);
  temperature_->setRange(0, 5);
  temperature_->setSingleStep(0.1);
  temperature_->setValue(0.0);
  temperature_->setToolTip(tr("0 = greedy"));
  top_k_ = new QSpinBox(this);
  top_k_->setRange(0, 100000);
  top_k_->setValue(25);
  top_k_->setToolTip(tr("0 = no top-k filter"));
  max_new_ = new QSpinBox(this);
  max_new_->setRange(1, 1000);
  max_new_->setValue(50);
  auto* go = new QPushButton(tr("Generate"), this);
  bar->addWidget(new QLabel(tr("<b>Samples</b>  Prompt"), this));
  bar->addWidget(prompt_, 1);
  bar->addWidget(new QLabel(tr("Temperature"), this));
  bar->addWidget(temperature_);
  bar->addWidget(new QLabel(tr("Top-k"), this));
  bar->addWidget(top_k_);
  bar->addWidget(new QLabel(tr("Tokens"), this));
  bar->addWidget(max_new_);
  bar->addWidget(go);
  layout->addLayout(bar);
  out_ = new QTextEdit(this);
  out_->setReadOnly(true);
  epochs_ = new QTextEdit(this);
  epochs_->setReadOnly(true);
  epochs_->setPlaceholderText(tr("greedy samples at the end of each epoch (text data)"));
  layout->addWidget(out_, 2);
  layout->addWidget(new QLabel(tr("At epoch ends"), this));
  layout->addWidget(epochs_, 1);
  connect(go, &QPushButton::clicked, this, &SamplesView::generate);
  connect(prompt_, &QLineEdit::returnPressed, this, &SamplesView::generate);
}

void SamplesView::setText(bool text_data) {
  prompt_->setEnabled(text_data);
  temperature_->setEnabled(text_data);
  top_k_->setEnabled(text_data);
  max_new_->setEnabled(text_data);
  out_->clear();
  epochs_->clear();
}

void SamplesView::generate() {
  Q_EMIT samplesRequested(prompt_->text(), temperature_->value(), top_k_->value(), max_new_->value());
}

void SamplesView::setSamples(const std::vector<qk::SampleView>& s) {
  QString html;
  for (const auto& v : s) {
    const QString name = QString::fromStdString(v.variant);
    html += QString("<p><b style='color:%1'>%2</b><br><span style='white-space:pre-wrap'>%3</span></p>")
                .arg(variant_color(name).name(), name, QString::fromStdString(v.text).toHtmlEscaped());
  }
  out_->setHtml(html);
}

void SamplesView::addEpochSamples(const std::vector<qk::SampleRecord>& s) {
  for (const auto& r : s)
    epochs_->append(QString("[%1, epoch %2] %3").arg(QString::fromStdString(r.variant)).arg(r.epoch)
                        .arg(QString::fromStdString(r.text)));
}

QString SamplesView::contents() const { return out_->toPlainText(); }

}  // namespace qkui
