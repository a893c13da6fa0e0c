#!/bin/sh
echo api
