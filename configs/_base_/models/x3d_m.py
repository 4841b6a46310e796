# X3D-M, as mmaction's X3D config
_base_ = ['mmaction::_base_/models/x3d.py']
